"""stddev_from_moving_average: The last point is more than 3 sigma from the exponentially weighted moving average (com 50).

One of the reference's nine "three-sigma" algorithms; its quirks, the default-mode
fixes and the meaning of its score are in docs/algorithms.md.  The row loop is
compiled (``_rows``, run by ``_fused`` as the ensemble runs it).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from skyline.analysis.algorithms.classic._fused import row_kernel, run_rows
from skyline.analysis.algorithms.classic._shared import Block, Context, Votes, algorithm


@lru_cache(maxsize=64)
def ewm_weights(n: int, com: float = 50.0) -> tuple[np.ndarray, float, float]:
    """pandas ``ewm(com, adjust=True)`` weights of n points (newest last), their sum
    and the sum of their squares."""
    w = (1.0 - 1.0 / (1.0 + com)) ** np.arange(n - 1, -1, -1, dtype=np.float64)
    w.flags.writeable = False
    return w, float(w.sum()), float((w * w).sum())


@algorithm(position=8, etsy_position=4)
@row_kernel
def stddev_from_moving_average(b: Block, ctx: Context) -> Votes:
    return run_rows("stddev_from_moving_average", b.t, b.v, ctx)
