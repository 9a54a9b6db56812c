"""grubbs: Grubbs' test: the tail average's z-score exceeds the Grubbs critical value.

One of the reference's nine "three-sigma" algorithms; its quirks, the default-mode
fixes and the meaning of its score are in docs/algorithms.md.  The row loop is
compiled (``_rows``, run by ``_fused`` as the ensemble runs it).
"""

from __future__ import annotations

import math
from functools import lru_cache

from skyline.analysis.algorithms.classic._fused import row_kernel, run_rows
from skyline.analysis.algorithms.classic._shared import Block, Context, Votes, algorithm


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
@row_kernel
def grubbs(b: Block, ctx: Context) -> Votes:
    return run_rows("grubbs", b.t, b.v, ctx)
