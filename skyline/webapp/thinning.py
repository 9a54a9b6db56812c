"""Thinning a series for a graph without hiding its anomalies.

Every N-th point would drop a one-point spike N-1 times in N; instead the series is cut
into buckets and each bucket keeps its lowest and highest point, in time order, so
every spike and every dip is drawn however many points are left out.
"""

from __future__ import annotations

import numpy as np


def extremes(ts: np.ndarray, vs: np.ndarray, buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``2 * buckets`` points: each bucket's lowest and highest (one point when
    they are the same), in time order.  Series that short already are returned as they are."""
    n = len(ts)
    if n <= 2 * buckets:
        return ts, vs
    bounds = np.arange(buckets + 1, dtype=np.int64) * n // buckets
    starts = bounds[:-1]
    lows = np.minimum.reduceat(vs, starts)
    highs = np.maximum.reduceat(vs, starts)
    owner = np.repeat(np.arange(buckets), np.diff(bounds))
    keep = np.unique(np.concatenate([
        _first_match(vs == lows[owner], owner), _first_match(vs == highs[owner], owner)
    ]))  # fmt: skip
    return ts[keep], vs[keep]


def _first_match(match: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """Each bucket's first index where ``match`` holds (every bucket has one: its own
    low and high are in it)."""
    hits = np.flatnonzero(match)
    bucket = owner[hits]
    return hits[np.r_[True, bucket[1:] != bucket[:-1]]]
