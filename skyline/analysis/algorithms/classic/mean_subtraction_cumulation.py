"""mean_subtraction_cumulation: The last point is more than 3 sigma from the mean of the points before it.

One of the reference's nine "three-sigma" algorithms; its quirks, the default-mode
fixes and the meaning of its score are in docs/algorithms.md.
"""

from __future__ import annotations

import numpy as np

from skyline.analysis.algorithms.classic._shared import Block, Context, Votes, algorithm, sigma_test
from skyline.analysis.algorithms.prepare import _std


@algorithm(position=6, etsy_position=2)
def mean_subtraction_cumulation(b: Block, ctx: Context) -> Votes:
    m = b.m
    if b.n < 2:
        return sigma_test(np.full(m, np.nan), np.full(m, np.nan), ctx)
    x = b.d[:, :-1]
    mu = x.mean(axis=1)
    std = _std(x, mu, 0 if ctx.classic else 1)  # classic: the numba path's ddof 0
    return sigma_test(b.d[:, -1] - mu, std, ctx)
