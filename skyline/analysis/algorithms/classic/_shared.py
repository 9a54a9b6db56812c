"""What the kernels of the classic algorithms share: the vote constants and the
algorithm contract (re-exported from ``_base``), and the sigma-test helpers.

The leading ``_`` keeps this module out of the registry (it defines no algorithm).
"""

from __future__ import annotations

import numpy as np

from skyline.analysis.algorithms.classic._base import (
    FALSE,
    NONE,
    TRUE,
    Context,
    Votes,
    algorithm,
)
from skyline.analysis.algorithms.prepare import Block

__all__ = [
    "FALSE",
    "NONE",
    "TRUE",
    "Block",
    "Context",
    "Votes",
    "algorithm",
    "judge",
    "ratio",
    "sigma_test",
]


def ratio(diff: np.ndarray, limit: np.ndarray) -> np.ndarray:
    """diff / limit; inf when limit is 0 and diff > 0; 0 when not computable."""
    with np.errstate(all="ignore"):
        out = diff / limit
    out = np.where(limit == 0, np.where(diff > 0, np.inf, 0.0), out)
    return np.where(np.isnan(out), 0.0, out)


def judge(exceeds: np.ndarray, valid: np.ndarray, ctx: Context) -> np.ndarray:
    """Votes from a comparison.  Classic keeps the reference's behaviour (a NaN
    statistic compares False); default mode says None when a statistic is not finite."""
    votes = np.where(exceeds, TRUE, FALSE).astype(np.int8)
    if not ctx.classic:
        votes[~valid] = NONE
    return votes


def sigma_test(diff: np.ndarray, std: np.ndarray, ctx: Context, k: float = 3.0) -> Votes:
    """|diff| > k * std, with score |diff| / (k * std)."""
    diff = np.abs(diff)
    with np.errstate(all="ignore"):
        limit = k * std
        exceeds = diff > limit
    valid = np.isfinite(diff) & np.isfinite(limit)
    return judge(exceeds, valid, ctx), ratio(diff, limit)
