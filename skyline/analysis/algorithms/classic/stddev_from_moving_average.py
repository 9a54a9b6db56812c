"""stddev_from_moving_average: The last point is more than 3 sigma from the exponentially weighted moving average (com 50).

One of the reference's nine "three-sigma" algorithms; its quirks, the default-mode
fixes and the meaning of its score are in docs/algorithms.md.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from skyline.analysis.algorithms.classic._shared import Block, Context, Votes, algorithm, sigma_test


@lru_cache(maxsize=64)
def ewm_weights(n: int, com: float = 50.0) -> tuple[np.ndarray, float, float]:
    """pandas ``ewm(com, adjust=True)`` weights of n points (newest last), their sum
    and the sum of their squares."""
    w = (1.0 - 1.0 / (1.0 + com)) ** np.arange(n - 1, -1, -1, dtype=np.float64)
    w.flags.writeable = False
    return w, float(w.sum()), float((w * w).sum())


@algorithm(position=8, etsy_position=4)
def stddev_from_moving_average(b: Block, ctx: Context) -> Votes:
    w, sw, sw2 = ewm_weights(b.n)
    d = b.d
    mu = (d * w).sum(axis=1) / sw
    dev = d - mu[:, None]
    dev *= dev
    dev *= w
    num, den = sw * sw, sw * sw - sw2
    var = dev.sum(axis=1) / sw * (num / den) if den > 0 else np.full(b.m, np.nan)
    std = np.sqrt(np.maximum(var, 0.0))
    return sigma_test(d[:, -1] - mu, std, ctx)
