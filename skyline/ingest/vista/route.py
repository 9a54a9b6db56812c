"""The one route by which pulled, backfilled and imported points reach the store.

Points of the last ``full_duration`` (a day) go into the live store by the same
append every pushed point takes (``TimeSeriesStore.append_batch`` with
``changed``), in time order per metric, so the analyzer judges each of them in
order.  Older points go into the rollups mirage and ionosphere read: down-sampled
to ``[mirage] rollup_resolution`` and merged into the metric's rollup (buckets the
rollup already holds are kept), under WATCH so that roomba's own fold is never
lost.  Points are validated like any ingest path's (``check_points``); rejects are
counted by reason.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import redis

from skyline.settings import Settings
from skyline.store.datapoint import MAX_NAME_LENGTH, MAX_TIMESTAMP, NAME_RE
from skyline.store.rollups import TRIM_GRACE, decode, downsample, encode
from skyline.store.timeseries import TimeSeriesStore


@dataclass
class Delivered:
    live: int = 0
    rolled: int = 0  # points folded into rollup buckets
    buckets: int = 0
    rejected: Counter[str] = field(default_factory=Counter)

    def add(self, other: Delivered) -> None:
        self.live += other.live
        self.rolled += other.rolled
        self.buckets += other.buckets
        self.rejected.update(other.rejected)


def check_points(t: np.ndarray, v: np.ndarray, now: float, settings: Settings,
                 counted: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, Counter[str]]:  # fmt: skip
    """The points that can be stored, as float64 arrays, and the others counted by
    reason: a timestamp that is not a finite number (``timestamp_not_numeric``: a
    source's NULL or unreadable time), a value that is not (``value_not_finite``), a
    timestamp past ``[flux] max_future`` or past what a series holds
    (``timestamp_in_future``), at or before the epoch or older than both the live
    window and the rollups keep (``timestamp_too_old``).  A pull checks its points
    with it before it moves a metric's cursor, so one bad timestamp cannot carry the
    cursor past the good ones.  ``counted``: the points whose refusal is counted (all
    when None)."""
    t = np.asarray(t, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    count = np.ones(len(t), bool) if counted is None else counted
    rejected: Counter[str] = Counter()
    timeless = ~np.isfinite(t)
    rejected["timestamp_not_numeric"] += int((timeless & count).sum())
    ok = ~timeless & np.isfinite(v)
    rejected["value_not_finite"] += int((~timeless & ~ok & count).sum())
    future = ok & ((t > now + settings.flux.max_future) | (t > MAX_TIMESTAMP))
    rejected["timestamp_in_future"] += int((future & count).sum())
    ok &= ~future
    kept = max(settings.mirage.rollup_retention, settings.skyline.full_duration)
    old = ok & ((t <= 0) | (t < now - kept))
    rejected["timestamp_too_old"] += int((old & count).sum())
    ok &= ~old
    return t[ok], v[ok], +rejected


def deliver(
    store: TimeSeriesStore,
    settings: Settings,
    series: dict[str, tuple[np.ndarray, np.ndarray]],
    now: float,
) -> Delivered:
    """Validate and store ``metric -> (timestamps, values)`` (any order)."""
    out = Delivered()
    live_cut = now - settings.skyline.full_duration
    ids: list[np.ndarray] = []
    ts_all: list[np.ndarray] = []
    vs_all: list[np.ndarray] = []
    names: list[str] = []
    old: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for metric, (t, v) in series.items():
        if not metric or len(metric) > MAX_NAME_LENGTH or not NAME_RE.fullmatch(metric):
            out.rejected["name_charset"] += len(t)
            continue
        t, v, rejected = check_points(t, v, now, settings)
        out.rejected.update(rejected)
        order = np.argsort(t, kind="stable")
        t, v = t[order], v[order]
        recent = t >= live_cut
        if recent.any():
            ids.append(np.full(int(recent.sum()), len(names), dtype=np.int64))
            ts_all.append(t[recent])
            vs_all.append(v[recent])
            names.append(metric)
        if (~recent).any():
            old[metric] = (t[~recent], v[~recent])
    if names:
        refused: dict[str, int] = {}  # series keys of another type: those points only
        out.live = store.append_batch(
            np.concatenate(ids), np.concatenate(ts_all), np.concatenate(vs_all), names,
            changed=True, refused=refused,
        )  # fmt: skip
        out.rejected["series_key_wrong_type"] += sum(refused.values())
    for metric, (t, v) in old.items():
        out.rolled += len(t)
        out.buckets += roll_in(store, settings, metric, t, v, now)
    out.rejected = +out.rejected
    return out


def roll_in(
    store: TimeSeriesStore, settings: Settings, metric: str, t: np.ndarray, v: np.ndarray,
    now: float,
) -> int:  # fmt: skip
    """Merge old points into the metric's rollup; returns the buckets added."""
    cfg = settings.mirage
    res = cfg.rollup_resolution
    keep = t >= now - cfg.rollup_retention
    t, v = t[keep], v[keep]
    if not len(t):
        return 0
    # only whole buckets older than the live window's first bucket
    new = downsample(t.astype(np.int64), v, res)
    key = store.keys.rollup(res, metric)
    ttl_ms = (cfg.rollup_retention + TRIM_GRACE) * 1000
    client = store.redis
    with client.pipeline(transaction=True) as pipe:
        while True:
            try:
                pipe.watch(key)
                raw = pipe.get(key)
                have = decode(raw if isinstance(raw, bytes) else None)
                fresh = ~np.isin(new.timestamps, have.timestamps)
                if not fresh.any():
                    pipe.reset()
                    return 0
                starts = np.concatenate((have.timestamps, new.timestamps[fresh]))
                means = np.concatenate((have.values, new.values[fresh]))
                order = np.argsort(starts, kind="stable")
                pipe.multi()
                pipe.set(key, encode(starts[order], means[order]), px=ttl_ms)
                pipe.execute()
                return int(fresh.sum())
            except redis.WatchError:
                continue
