"""Why a series is not analysed at all (the reference's algorithm exceptions).

Checked in the reference's order: EmptyTimeseries / TooShort (length), Stale
(age of the last point), Boring (too few distinct values among the last points).
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np

from skyline.store.timeseries import Series

__all__ = ["Skip", "boring_rows", "check_skip", "distinct_counts"]


class Skip(StrEnum):
    TooShort = "TooShort"
    Stale = "Stale"
    Boring = "Boring"
    EmptyTimeseries = "EmptyTimeseries"


def distinct_counts(values_2d: np.ndarray, last: int) -> np.ndarray:
    """Distinct values among the last ``last`` points of each row (all when ``last``
    is 0, as the reference's ``[-0:]`` slice); -0.0 equals 0.0 as in a Python set."""
    tail = values_2d[:, -last:] if last > 0 else values_2d
    if tail.shape[1] == 0:
        return np.zeros(tail.shape[0], np.int64)
    s = np.sort(tail, axis=1)
    return 1 + (s[:, 1:] != s[:, :-1]).sum(axis=1)


def boring_rows(values_2d: np.ndarray, last: int, boredom_set_size: int, mode: str) -> np.ndarray:
    """``is_boring(distinct_counts(values_2d, last), ...)``.  For a limit of one
    distinct value (the default) it compares each tail's minimum with its maximum
    instead of sorting it; rows whose minimum is NaN are counted the long way."""
    tail = values_2d[:, -last:] if last > 0 else values_2d
    if boredom_set_size != 1 or tail.shape[1] == 0:
        return is_boring(distinct_counts(tail, 0), boredom_set_size, mode)
    low = tail.min(axis=1)
    out = low == tail.max(axis=1)  # one distinct value: boring in either mode
    odd = np.flatnonzero(np.isnan(low))
    if len(odd):
        out[odd] = is_boring(distinct_counts(tail[odd], 0), boredom_set_size, mode)
    return out


def is_boring(distinct: np.ndarray, boredom_set_size: int, mode: str) -> np.ndarray:
    # classic: the reference tests ``== BOREDOM_SET_SIZE``; default: ``<=`` (fewer
    # distinct values than the limit is at least as boring)
    if mode == "classic":
        return distinct == boredom_set_size
    return distinct <= boredom_set_size


def check_skip(
    series: Series,
    now: float,
    *,
    min_length: int = 100,
    stale_period: float = 500,
    max_boredom: int = 100,
    boredom_set_size: int = 1,
    mode: str = "default",
) -> Skip | None:
    """The reason to skip a prepared series, or None to analyse it.

    Both modes count boredom over the last ``max_boredom`` POINTS (the reference's
    code; its docs say seconds).
    """
    n = len(series)
    if n == 0:
        return Skip.EmptyTimeseries
    if n < min_length:
        return Skip.TooShort
    if now - float(series.timestamps[-1]) > stale_period:
        return Skip.Stale
    row = np.asarray(series.values).reshape(1, -1)
    if boring_rows(row, max_boredom, boredom_set_size, mode)[0]:
        return Skip.Boring
    return None
