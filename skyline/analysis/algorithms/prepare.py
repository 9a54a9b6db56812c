"""Preparing raw data for the algorithms, and the row block they compute on.

``prepare_arrays`` turns raw timestamps and values (lists or arrays, any order,
duplicates, NaN/inf) into a :class:`~skyline.store.timeseries.Series` exactly as the
store's ``prepare`` does: sort by timestamp, keep the last-written value of a
repeated timestamp, then drop non-finite values.

``Block`` holds equal-length prepared series as rows of 2-D arrays.  Every
algorithm is written once, over a block: a single series is a block of one row,
a batch is a block of many.  Because each statistic is a reduction along a row
(``axis=1``), a row gives bit-identical results alone or inside a batch, which is
what lets the batch path promise exactly the per-series verdicts.

A monotonic counter is analysed as its non-negative derivative (``is_counter``,
``non_negative_derivative``; the same rule over the rows of a block: ``counter_rows``,
``derivative_rows``), by the analyzer and by mirage alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from skyline.compiled import jit
from skyline.store.timeseries import Series, sort_dedupe

__all__ = [
    "Block",
    "counter_rows",
    "derivative_rows",
    "is_counter",
    "non_negative_derivative",
    "prepare_arrays",
    "tail_avg",
]


def prepare_arrays(
    timestamps: Sequence[float] | np.ndarray, values: Sequence[float] | np.ndarray
) -> Series:
    """Sort, de-duplicate (last write wins) and drop non-finite points.

    Timestamps are truncated to integers; a point whose timestamp is not finite is
    dropped.  Same rules, and same order of rules, as ``skyline.store.timeseries.prepare``.
    """
    t = np.asarray(timestamps, dtype=np.float64).ravel()
    v = np.asarray(values, dtype=np.float64).ravel()
    if len(t) != len(v):
        raise ValueError(f"{len(t)} timestamps but {len(v)} values")
    ok_t = np.isfinite(t)
    if not ok_t.all():
        t, v = t[ok_t], v[ok_t]
    prepared = sort_dedupe(t.astype(np.int64), v)
    return Series(np.ascontiguousarray(prepared.timestamps), np.ascontiguousarray(prepared.values))


def as_series(series: Any) -> Series:
    """A prepared ``Series`` from a Series or ``(timestamps, values)``; re-prepares
    only when the input is not already sorted, unique and finite."""
    t = np.asarray(series[0])
    v = np.asarray(series[1], dtype=np.float64)
    if (
        t.dtype == np.int64
        and t.ndim == 1
        and v.ndim == 1
        and len(t) == len(v)
        and (len(t) < 2 or bool(np.all(t[1:] > t[:-1])))
        and bool(np.all(np.isfinite(v)))
    ):
        return Series(t, v)
    return prepare_arrays(t, v)


def tail_avg(values: Sequence[float] | np.ndarray) -> float:
    """Mean of the last three values, ``(v[-1] + v[-2] + v[-3]) / 3`` in that order
    (the reference's arithmetic); the last value when there are fewer than three."""
    n = len(values)
    if n == 0:
        raise ValueError("tail_avg of an empty series")
    if n < 3:
        return float(values[-1])
    return (float(values[-1]) + float(values[-2]) + float(values[-3])) / 3


class Block:
    """Equal-length prepared series as rows, with per-row statistics cached.

    ``t`` is ``(m, n)`` int64 and ``v`` ``(m, n)`` float64.  Cached entries are
    per-row arrays (first dimension ``m``), so ``take`` can carry them to a subset
    of rows without recomputing.
    """

    __slots__ = ("t", "v", "_cache")

    def __init__(self, t: np.ndarray, v: np.ndarray, cache: dict[str, Any] | None = None):
        self.t = t
        self.v = v
        self._cache: dict[str, Any] = cache if cache is not None else {}

    @classmethod
    def of(cls, series: Series) -> Block:
        return cls(series.timestamps.reshape(1, -1), series.values.reshape(1, -1))

    @property
    def m(self) -> int:
        return self.v.shape[0]

    @property
    def n(self) -> int:
        return self.v.shape[1]

    def take(self, rows: np.ndarray) -> Block:
        cache = {k: a[rows] for k, a in self._cache.items()}
        return Block(self.t[rows], self.v[rows], cache)

    def cached(self, key: str, compute: Callable[[], Any]) -> Any:
        value = self._cache.get(key)
        if value is None:
            value = self._cache[key] = compute()
        return value

    # Shared statistics ----------------------------------------------------------------
    @property
    def d(self) -> np.ndarray:
        """Values shifted by each row's first value (exact zeros for a constant row,
        and no loss of the noise under a huge offset)."""
        return self.cached("d", lambda: self.v - self.v[:, :1])

    @property
    def tail(self) -> np.ndarray:
        """tail_avg of the raw values, per row."""
        return self.cached("tail", lambda: _tail(self.v))

    @property
    def tail_d(self) -> np.ndarray:
        """tail_avg of the shifted values, per row."""
        return self.cached("tail_d", lambda: _tail(self.d))

    @property
    def mean_d(self) -> np.ndarray:
        return self.cached("mean_d", lambda: self.d.mean(axis=1))

    @property
    def std_d(self) -> np.ndarray:
        """Sample standard deviation (ddof=1) of every value of the row."""
        return self.cached("std_d", lambda: _std(self.d, self.mean_d, 1))


def _tail(x: np.ndarray) -> np.ndarray:
    if x.shape[1] < 3:
        return x[:, -1].copy()
    return (x[:, -1] + x[:, -2] + x[:, -3]) / 3


def _std(x: np.ndarray, mean: np.ndarray, ddof: int) -> np.ndarray:
    """Row standard deviation around a given row mean (NaN when n <= ddof)."""
    n = x.shape[1]
    dev = x - mean[:, None]
    np.multiply(dev, dev, out=dev)
    ss = dev.sum(axis=1)
    with np.errstate(all="ignore"):
        return np.sqrt(ss / (n - ddof)) if n > ddof else np.full(len(ss), np.nan)


def row_search(t: np.ndarray, x: np.ndarray, side: str = "left") -> np.ndarray:
    """``searchsorted`` of each row of sorted ``t`` for the row's ``x``, vectorised.

    First a guess, exact for an evenly spaced row (most metrics): where ``x`` falls
    on the line from the row's first to its last timestamp, checked against its
    neighbours; the rows it misses go to a binary search, all of them at once."""
    m, n = t.shape
    if not m or not n:
        return np.zeros(m, np.int64)
    x = np.asarray(x)
    if x.dtype.kind == "f":  # integer timestamps: t >= x iff t >= ceil(x); t > x iff t > floor(x)
        x = np.ceil(x) if side == "left" else np.floor(x)
    x = x.astype(np.int64)
    first, last = t[:, 0], t[:, -1]
    span = np.maximum(last - first, 1)
    d = np.clip(x - first, 0, span) * (n - 1)
    # the first index whose timestamp is >= x (left) or > x (right) on the line
    guess = -(-d // span) if side == "left" else d // span + 1
    guess = np.where(x < first, 0, np.where(x > last, n, np.minimum(guess, n)))
    rows = np.arange(m)
    before = t[rows, np.maximum(guess - 1, 0)]
    at = t[rows, np.minimum(guess, n - 1)]
    if side == "left":
        ok = ((guess == 0) | (before < x)) & ((guess == n) | (at >= x))
    else:
        ok = ((guess == 0) | (before <= x)) & ((guess == n) | (at > x))
    if ok.all():
        return guess
    miss = np.flatnonzero(~ok)
    guess[miss] = _bisect_rows(t[miss], x[miss], side)
    return guess


def _bisect_rows(t: np.ndarray, x: np.ndarray, side: str) -> np.ndarray:
    """``row_search`` by binary search on every row at once."""
    m, n = t.shape
    lo = np.zeros(m, np.int64)
    hi = np.full(m, n, np.int64)
    rows = np.arange(m)
    while True:
        open_ = lo < hi
        if not open_.any():
            return lo
        mid = (lo + hi) // 2
        probe = t[rows, np.minimum(mid, n - 1)]
        go_right = (probe < x) if side == "left" else (probe <= x)
        go_right &= open_
        stay = open_ & ~go_right
        lo = np.where(go_right, mid + 1, lo)
        hi = np.where(stay, mid, hi)


# Counters ---------------------------------------------------------------------------
def is_counter(series: Series) -> bool:
    """A monotonic counter: non-negative, mostly rising, falling only at rare resets."""
    v = series.values
    if len(v) < 3 or v.min() < 0:
        return False
    d = np.diff(v)
    rising, falling = int((d > 0).sum()), int((d < 0).sum())
    return rising >= len(d) // 2 and falling <= max(1, len(d) // 100)


def counter_rows(values_2d: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """``is_counter`` of every row of a 2-D array (of rows ``rows`` of it, read in
    place), as one boolean array, in one compiled loop: most rows are gauges, and a
    gauge falls far more often than a counter may, so its row is left at the first
    fall too many."""
    m, n = values_2d.shape
    rows = np.arange(m) if rows is None else np.ascontiguousarray(rows, np.int64)
    out = np.zeros(len(rows), np.bool_)
    if n >= 3:
        _counter_rows(values_2d, rows, max(1, (n - 1) // 100), (n - 1) // 2, out)
    return out


@jit
def _counter_rows(v2d: np.ndarray, rows: np.ndarray, max_falls: int, min_rises: int,
                  out: np.ndarray) -> None:  # fmt: skip
    for r in range(len(rows)):
        v = v2d[rows[r]]
        falls = rises = 0
        negative, nan = v[0] < 0, v[0] != v[0]
        for i in range(1, len(v)):
            x, step = v[i], v[i] - v[i - 1]
            if step < 0:
                falls += 1
                if falls > max_falls:
                    break
            elif step > 0:
                rises += 1
            negative |= x < 0
            nan |= x != x
        # a NaN minimum does not exclude, as in is_counter (v.min() < 0 is then False)
        out[r] = falls <= max_falls and rises >= min_rises and (nan or not negative)


def non_negative_derivative(series: Series) -> Series:
    """Per-step increase of a counter; a step across a reset (a fall) is dropped."""
    d = np.diff(series.values)
    keep = d >= 0
    return Series(series.timestamps[1:][keep], d[keep])


def derivative_rows(
    t2d: np.ndarray, v2d: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``non_negative_derivative`` of every row, as ``(rows, timestamps_2d, values_2d)``
    groups: the rows that dropped the same number of falls share a length."""
    d = np.diff(v2d, axis=1)
    keep = d >= 0
    kept = keep.sum(axis=1)
    out = []
    for length in np.unique(kept).tolist():
        rows = np.flatnonzero(kept == length)
        if length == d.shape[1]:
            out.append((rows, t2d[rows, 1:], d[rows]))
            continue
        k, shape = keep[rows], (len(rows), length)
        out.append((rows, t2d[rows, 1:][k].reshape(shape), d[rows][k].reshape(shape)))
    return out
