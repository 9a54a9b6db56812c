"""histogram_bins: the tail average's bin, of 15 equal-width bins of the series, holds at most 20 points.

One of the reference's nine "three-sigma" algorithms; its quirks, the default-mode
fixes and the meaning of its score are in docs/algorithms.md.
"""

from __future__ import annotations

import numpy as np

from skyline.analysis.algorithms.classic._shared import Block, Context, Votes, algorithm, judge


@algorithm(position=1, etsy_position=7)
def histogram_bins(b: Block, ctx: Context) -> Votes:
    v, t = b.v, b.tail
    first, last = v.min(axis=1), v.max(axis=1)
    const = first == last  # np.histogram widens a zero range by 0.5 each side
    first = np.where(const, first - 0.5, first)
    last = np.where(const, last + 0.5, last)
    step = (last - first) / 15
    edges = np.arange(16)[None, :] * step[:, None] + first[:, None]  # np.linspace's formula
    edges[:, 15] = last
    if ctx.classic:  # bin 0 only when t <= its lower edge; others lower <= t < upper
        k = (edges[:, 1:] <= t[:, None]).sum(axis=1)
        at_min = t <= edges[:, 0]
        matched = at_min | ((k >= 1) & (k <= 14))
        k = np.where(at_min, 0, np.clip(k, 0, 14))
    else:  # the bin np.histogram itself would put t in (last bin closed; clamped)
        k = (edges[:, 1:15] <= t[:, None]).sum(axis=1)
        matched = np.ones(len(k), bool)
    rows = np.arange(len(k))
    lower = edges[rows, k]
    upper = edges[rows, k + 1]
    upper = np.where(k == 14, np.nextafter(upper, np.inf), upper)  # last bin includes max
    count = ((v >= lower[:, None]) & (v < upper[:, None])).sum(axis=1)
    exceeds = matched & (count <= 20)
    valid = np.isfinite(edges).all(axis=1) & np.isfinite(t)
    scores = np.where(matched, 21.0 / (count + 1.0), 0.0)
    return judge(exceeds, valid, ctx), scores
