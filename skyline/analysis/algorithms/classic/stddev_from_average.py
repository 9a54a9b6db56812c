"""stddev_from_average: The tail average is more than 3 sigma from the series' mean.

One of the reference's nine "three-sigma" algorithms; its quirks, the default-mode
fixes and the meaning of its score are in docs/algorithms.md.
"""

from __future__ import annotations

from skyline.analysis.algorithms.classic._shared import Block, Context, Votes, algorithm, sigma_test


@algorithm(position=3, etsy_position=3)
def stddev_from_average(b: Block, ctx: Context) -> Votes:
    return sigma_test(b.tail_d - b.mean_d, b.std_d, ctx)
