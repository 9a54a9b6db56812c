"""first_hour_average: The tail average is more than 3 sigma from the mean of the window's first hour.

One of the reference's nine "three-sigma" algorithms; its quirks, the default-mode
fixes and the meaning of its score are in docs/algorithms.md.  The row loop is
compiled (``_rows``, run by ``_fused`` as the ensemble runs it).
"""

from __future__ import annotations

from skyline.analysis.algorithms.classic._fused import row_kernel, run_rows
from skyline.analysis.algorithms.classic._shared import Block, Context, Votes, algorithm


@algorithm(position=2, etsy_position=1)
@row_kernel
def first_hour_average(b: Block, ctx: Context) -> Votes:
    return run_rows("first_hour_average", b.t, b.v, ctx)
