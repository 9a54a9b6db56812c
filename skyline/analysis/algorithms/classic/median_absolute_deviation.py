"""median_absolute_deviation: The last point's deviation from the median is more than 6 times the median absolute deviation.

One of the reference's nine "three-sigma" algorithms; its quirks, the default-mode
fixes and the meaning of its score are in docs/algorithms.md.  The row loop is
compiled (``_rows``, run by ``_fused`` as the ensemble runs it).
"""

from __future__ import annotations

from skyline.analysis.algorithms.classic._fused import row_kernel, run_rows
from skyline.analysis.algorithms.classic._shared import Block, Context, Votes, algorithm


@algorithm(position=7, etsy_position=8)
@row_kernel
def median_absolute_deviation(b: Block, ctx: Context) -> Votes:
    return run_rows("median_absolute_deviation", b.t, b.v, ctx)
