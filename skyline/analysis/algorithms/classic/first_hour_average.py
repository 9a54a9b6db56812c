"""first_hour_average: The tail average is more than 3 sigma from the mean of the window's first hour.

One of the reference's nine "three-sigma" algorithms; its quirks, the default-mode
fixes and the meaning of its score are in docs/algorithms.md.
"""

from __future__ import annotations

import numpy as np

from skyline.analysis.algorithms.classic._shared import Block, Context, Votes, algorithm, sigma_test
from skyline.analysis.algorithms.prepare import _std, row_search


@algorithm(position=2, etsy_position=1)
def first_hour_average(b: Block, ctx: Context) -> Votes:
    start = b.t[:, -1] - ctx.full_duration
    lo = row_search(b.t, start, "right")  # ts > start
    hi = row_search(b.t, start + 3600, "left")  # ts < start + 3600
    m = b.m
    mean, std = np.full(m, np.nan), np.full(m, np.nan)
    key = lo * (b.n + 1) + hi
    d = b.d
    for kv in np.unique(key):  # rows sharing a window slice are computed together
        rows = np.flatnonzero(key == kv)
        a, z = int(lo[rows[0]]), int(hi[rows[0]])
        if z <= a:
            continue
        x = d[rows, a:z] if len(rows) < m else d[:, a:z]
        mu = x.mean(axis=1)
        mean[rows], std[rows] = mu, _std(x, mu, 1)
    return sigma_test(b.tail_d - mean, std, ctx)
