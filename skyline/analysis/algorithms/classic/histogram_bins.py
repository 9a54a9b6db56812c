"""histogram_bins: the tail average's bin, of 15 equal-width bins of the series, holds at most 20 points.

One of the reference's nine "three-sigma" algorithms; its quirks, the default-mode
fixes and the meaning of its score are in docs/algorithms.md.  The row loop is
compiled (``_rows``, run by ``_fused`` as the ensemble runs it).
"""

from __future__ import annotations

from skyline.analysis.algorithms.classic._fused import row_kernel, run_rows
from skyline.analysis.algorithms.classic._shared import Block, Context, Votes, algorithm


@algorithm(position=1, etsy_position=7)
@row_kernel
def histogram_bins(b: Block, ctx: Context) -> Votes:
    return run_rows("histogram_bins", b.t, b.v, ctx)
