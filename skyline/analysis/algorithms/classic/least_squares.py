"""least_squares: the tail average of the residuals of a least-squares line is more than 3 sigma of them.

One of the reference's nine "three-sigma" algorithms; its quirks, the default-mode
fixes and the meaning of its score are in docs/algorithms.md.  The row loop is
compiled (``_rows``, run by ``_fused`` as the ensemble runs it).
"""

from __future__ import annotations

from skyline.analysis.algorithms.classic._fused import row_kernel, run_rows
from skyline.analysis.algorithms.classic._shared import Block, Context, Votes, algorithm


@algorithm(position=9, etsy_position=5)
@row_kernel
def least_squares(b: Block, ctx: Context) -> Votes:
    return run_rows("least_squares", b.t, b.v, ctx)
