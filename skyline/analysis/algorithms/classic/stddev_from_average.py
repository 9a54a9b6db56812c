"""stddev_from_average: The tail average is more than 3 sigma from the series' mean.

One of the reference's nine "three-sigma" algorithms; its quirks, the default-mode
fixes and the meaning of its score are in docs/algorithms.md.  The row loop is
compiled (``_rows``, run by ``_fused`` as the ensemble runs it).
"""

from __future__ import annotations

from skyline.analysis.algorithms.classic._fused import row_kernel, run_rows
from skyline.analysis.algorithms.classic._shared import Block, Context, Votes, algorithm


@algorithm(position=3, etsy_position=3)
@row_kernel
def stddev_from_average(b: Block, ctx: Context) -> Votes:
    return run_rows("stddev_from_average", b.t, b.v, ctx)
