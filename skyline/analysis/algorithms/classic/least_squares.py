"""least_squares: the tail average of the residuals of a least-squares line is more than 3 sigma of them.

One of the reference's nine "three-sigma" algorithms; its quirks, the default-mode
fixes and the meaning of its score are in docs/algorithms.md.
"""

from __future__ import annotations

import numpy as np

from skyline.analysis.algorithms.classic._shared import (
    FALSE,
    TRUE,
    Block,
    Context,
    Votes,
    algorithm,
    sigma_test,
)
from skyline.analysis.algorithms.prepare import _std, _tail


@algorithm(position=9, etsy_position=5)
def least_squares(b: Block, ctx: Context) -> Votes:
    m = b.m
    if b.n < 3:
        return np.full(m, FALSE, np.int8), np.zeros(m)
    tf = b.t.astype(np.float64)
    xc = tf - tf.mean(axis=1)[:, None]
    yc = b.d - b.mean_d[:, None]
    with np.errstate(all="ignore"):
        slope = (xc * yc).sum(axis=1) / (xc * xc).sum(axis=1)
    err = yc - slope[:, None] * xc
    std = _std(err, err.mean(axis=1), 0)  # scipy.std: population
    tail = _tail(err)
    votes, scores = sigma_test(tail, std, ctx)
    # round(std) != 0 and round(t) != 0, i.e. both above 0.5 in magnitude
    votes[(votes == TRUE) & ~((std > 0.5) & (np.abs(tail) > 0.5))] = FALSE
    return votes, scores
