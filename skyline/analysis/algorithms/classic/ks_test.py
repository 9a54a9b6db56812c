"""ks_test: Kolmogorov-Smirnov: the last 10 minutes are distributed unlike the 50 minutes before them, and those are stationary.

One of the reference's nine "three-sigma" algorithms; its quirks, the default-mode
fixes and the meaning of its score are in docs/algorithms.md.  The row loop is
compiled (``_rows``, run by ``_fused`` as the ensemble runs it).
"""

from __future__ import annotations

import warnings

import numpy as np

from skyline.analysis.algorithms.classic._base import FALSE, NONE, TRUE
from skyline.analysis.algorithms.classic._fused import row_kernel, run_rows
from skyline.analysis.algorithms.classic._shared import Block, Context, Votes, algorithm


def ks_two_windows(reference: np.ndarray, probe: np.ndarray) -> tuple[int, float]:
    """The test itself, on the windows the compiled kernel found (``ks_window``):
    ``(vote, score)``, an error being a None vote as in the reference."""
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


@algorithm(position=5, etsy_position=9)
@row_kernel
def ks_test(b: Block, ctx: Context) -> Votes:
    return run_rows("ks_test", b.t, b.v, ctx)
