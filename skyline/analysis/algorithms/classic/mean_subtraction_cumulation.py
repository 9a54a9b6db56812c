"""mean_subtraction_cumulation: The last point is more than 3 sigma from the mean of the points before it.

One of the reference's nine "three-sigma" algorithms; its quirks, the default-mode
fixes and the meaning of its score are in docs/algorithms.md.  The row loop is
compiled (``_rows``, run by ``_fused`` as the ensemble runs it).
"""

from __future__ import annotations

from skyline.analysis.algorithms.classic._fused import row_kernel, run_rows
from skyline.analysis.algorithms.classic._shared import Block, Context, Votes, algorithm


@algorithm(position=6, etsy_position=2)
@row_kernel
def mean_subtraction_cumulation(b: Block, ctx: Context) -> Votes:
    return run_rows("mean_subtraction_cumulation", b.t, b.v, ctx)
