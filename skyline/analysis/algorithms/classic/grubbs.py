"""grubbs: Grubbs' test: the tail average's z-score exceeds the Grubbs critical value.

One of the reference's nine "three-sigma" algorithms; its quirks, the default-mode
fixes and the meaning of its score are in docs/algorithms.md.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from skyline.analysis.algorithms.classic._shared import Block, Context, Votes, algorithm, judge


@lru_cache(maxsize=256)
def grubbs_critical(n: int) -> float:
    """The Grubbs critical value G for n points (NaN when n <= 2)."""
    if n <= 2:
        return math.nan
    from scipy import stats  # imported when first needed: loading the registry stays light

    tq = float(stats.t.isf(0.05 / (2 * n), n - 2))
    t2 = tq * tq
    return ((n - 1) / math.sqrt(n)) * math.sqrt(t2 / (n - 2 + t2))


@algorithm(position=4, etsy_position=6)
def grubbs(b: Block, ctx: Context) -> Votes:
    std = b.std_d
    g = grubbs_critical(b.n)
    with np.errstate(all="ignore"):
        z = (b.tail_d - b.mean_d) / std
    if not ctx.classic:
        z = np.abs(z)  # fix: two-sided
    zero = std == 0
    with np.errstate(all="ignore"):
        exceeds = (z > g) & ~zero
        scores = np.where(zero | ~np.isfinite(z), 0.0, z / g)
    scores = np.where(np.isnan(scores), 0.0, scores)
    valid = zero | (np.isfinite(z) & math.isfinite(g))
    return judge(exceeds, valid, ctx), scores
