"""ks_test: Kolmogorov-Smirnov: the last 10 minutes are distributed unlike the 50 minutes before them, and those are stationary.

One of the reference's nine "three-sigma" algorithms; its quirks, the default-mode
fixes and the meaning of its score are in docs/algorithms.md.
"""

from __future__ import annotations

import warnings

import numpy as np

from skyline.analysis.algorithms.classic._shared import (
    FALSE,
    NONE,
    TRUE,
    Block,
    Context,
    Votes,
    algorithm,
)
from skyline.analysis.algorithms.prepare import row_search


@algorithm(position=5, etsy_position=9)
def ks_test(b: Block, ctx: Context) -> Votes:
    m = b.m
    if ctx.classic:
        if ctx.now is None:
            return np.full(m, NONE, np.int8), np.zeros(m)
        base = np.full(m, float(ctx.now))
    else:  # fix: windows end at the series' last timestamp, not the wall clock
        base = b.t[:, -1].astype(np.float64)
    ref_lo = row_search(b.t, base - 3600, "left")
    ref_hi = row_search(b.t, base - 600, "left")
    votes, scores = np.zeros(m, np.int8), np.zeros(m)
    candidates = np.flatnonzero((ref_hi - ref_lo >= 20) & (b.n - ref_hi >= 20))
    for i in candidates:
        reference = b.v[i, ref_lo[i] : ref_hi[i]]
        probe = b.v[i, ref_hi[i] :]
        if reference.min() == reference.max():
            continue
        votes[i], scores[i] = _ks_one(reference, probe)
    return votes, scores


def _ks_one(reference: np.ndarray, probe: np.ndarray) -> tuple[int, float]:
    from scipy import stats  # heavy imports, only when needed
    from statsmodels.tsa.stattools import adfuller

    try:
        res = stats.ks_2samp(reference, probe)
        d, p = float(res.statistic), float(res.pvalue)
        if p < 0.05 and d > 0.5:
            with warnings.catch_warnings():  # statsmodels' notice about its return type
                warnings.simplefilter("ignore", FutureWarning)
                adf_p = adfuller(reference, 10)[1]
            if adf_p < 0.05:
                return TRUE, d / 0.5
        return FALSE, d / 0.5
    except Exception:  # noqa: BLE001 - the reference records any error as a None vote
        return NONE, 0.0
