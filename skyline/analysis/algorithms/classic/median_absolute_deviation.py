"""median_absolute_deviation: The last point's deviation from the median is more than 6 times the median absolute deviation.

One of the reference's nine "three-sigma" algorithms; its quirks, the default-mode
fixes and the meaning of its score are in docs/algorithms.md.
"""

from __future__ import annotations

import numpy as np

from skyline.analysis.algorithms.classic._shared import Block, Context, Votes, algorithm, judge


@algorithm(position=7, etsy_position=8)
def median_absolute_deviation(b: Block, ctx: Context) -> Votes:
    med = np.median(b.v, axis=1)
    dev = np.abs(b.v - med[:, None])
    mad = np.median(dev, axis=1)
    last = dev[:, -1]
    zero = mad == 0
    with np.errstate(all="ignore"):
        stat = last / mad
    exceeds = ~zero & (stat > 6)
    scores = np.where(zero | ~np.isfinite(stat), 0.0, stat / 6)
    valid = np.isfinite(mad) & np.isfinite(last)
    return judge(exceeds, valid, ctx), scores
