"""Compiled row kernels (numba) of the four algorithms the default ensemble runs first.

``histogram_bins``, ``first_hour_average``, ``stddev_from_average`` and ``grubbs`` decide
most series: with the default consensus (6 of 9) a series leaves after them when all
four vote against it, about two series in three.  Each of them is computed here, row by
row, by one compiled loop that reads a row once for its shared statistics (minimum,
maximum, mean and deviation of the values shifted by the first one) and once more for
the histogram count and the squares.  The loop serves two callers, so that every path
gives bit-identical votes and scores:

* each algorithm's registered kernel (``run_rows`` with one code), which is what
  ``run_ensemble`` and ``run_ensemble_batch`` call;
* the ensemble's prefilter (``first_votes``: the leading algorithms of the ensemble
  that have a code, with early exit), which the analyzer runs on the decoded rows in
  place so that the series it decides are never copied into a batch.

The numpy kernels these replaced are the tests' fast twins
(``tests/unit/test_rows_twins.py``), and the exact-arithmetic twins of
``tests/unit/test_algorithms_twins.py`` judge both.  The leading ``_`` keeps this
module out of the registry (it defines no algorithm).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numba import njit

from skyline.analysis.algorithms.classic._base import FALSE, NONE, TRUE

__all__ = ["CODES", "first_votes", "leading_codes", "run_rows"]

# the algorithms with a compiled row kernel, by code
CODES = {"histogram_bins": 0, "first_hour_average": 1, "stddev_from_average": 2, "grubbs": 3}

_jit = njit(cache=True, nogil=True, error_model="numpy")


@_jit
def _moments(v: np.ndarray) -> tuple[float, float, float, float, float]:
    """(min, max, mean of d, sample std of d, tail average of d) of one row, where
    ``d = v - v[0]``; min and max are NaN when the row holds a NaN.  Sums run in four
    interleaved lanes (element i into lane i % 4), added as (l0 + l1) + (l2 + l3): four
    independent chains are about three times faster than one, and no less exact."""
    n = len(v)
    v0 = v[0]
    lo0 = lo1 = lo2 = lo3 = hi0 = hi1 = hi2 = hi3 = v0
    s0 = s1 = s2 = s3 = 0.0
    q = n - n % 4
    for i in range(0, q, 4):
        a, b, c, d = v[i], v[i + 1], v[i + 2], v[i + 3]
        lo0, hi0, s0 = min(lo0, a), max(hi0, a), s0 + (a - v0)
        lo1, hi1, s1 = min(lo1, b), max(hi1, b), s1 + (b - v0)
        lo2, hi2, s2 = min(lo2, c), max(hi2, c), s2 + (c - v0)
        lo3, hi3, s3 = min(lo3, d), max(hi3, d), s3 + (d - v0)
    for i in range(q, n):
        lo0, hi0, s0 = min(lo0, v[i]), max(hi0, v[i]), s0 + (v[i] - v0)
    total = (s0 + s1) + (s2 + s3)
    lo, hi = min(min(lo0, lo1), min(lo2, lo3)), max(max(hi0, hi1), max(hi2, hi3))
    if total != total:  # a NaN, or inf - inf: min and max say whether a value is NaN
        for i in range(n):
            if v[i] != v[i]:
                lo = hi = math.nan
    mean = total / n
    s0 = s1 = s2 = s3 = 0.0
    for i in range(0, q, 4):
        e0, e1 = (v[i] - v0) - mean, (v[i + 1] - v0) - mean
        e2, e3 = (v[i + 2] - v0) - mean, (v[i + 3] - v0) - mean
        s0, s1, s2, s3 = s0 + e0 * e0, s1 + e1 * e1, s2 + e2 * e2, s3 + e3 * e3
    for i in range(q, n):
        e = (v[i] - v0) - mean
        s0 += e * e
    ss = (s0 + s1) + (s2 + s3)
    std = math.sqrt(ss / (n - 1)) if n > 1 else math.nan
    return lo, hi, mean, std, _tail(v, v0)


@_jit
def _tail(v: np.ndarray, v0: float) -> float:
    """tail_avg of ``v - v0``; of ``v`` itself when ``v0`` is 0."""
    n = len(v)
    if n < 3:
        return v[n - 1] - v0
    return ((v[n - 1] - v0) + (v[n - 2] - v0) + (v[n - 3] - v0)) / 3


@_jit
def _judge(exceeds: bool, valid: bool, classic: bool) -> int:
    if not classic and not valid:
        return NONE
    return TRUE if exceeds else FALSE


@_jit
def _sigma(diff: float, std: float, classic: bool) -> tuple[int, float]:
    """|diff| > 3 std, with score |diff| / (3 std) (``_shared.sigma_test``)."""
    diff = abs(diff)
    limit = 3.0 * std
    exceeds = diff > limit
    valid = math.isfinite(diff) and math.isfinite(limit)
    if limit == 0:
        score = math.inf if diff > 0 else 0.0
    else:
        score = diff / limit
        if score != score:
            score = 0.0
    return _judge(exceeds, valid, classic), score


@_jit
def _histogram_bins(v: np.ndarray, lo: float, hi: float, classic: bool) -> tuple[int, float]:
    tail = _tail(v, 0.0)
    first, last = lo, hi
    if first == last:  # np.histogram widens a zero range by 0.5 each side
        first -= 0.5
        last += 0.5
    step = (last - first) / 15
    edges = np.empty(16)
    finite = True
    for i in range(16):
        edges[i] = i * step + first  # np.linspace's formula
    edges[15] = last
    for i in range(16):
        finite = finite and math.isfinite(edges[i])
    k = 0
    if classic:  # bin 0 only when tail <= its lower edge; others lower <= tail < upper
        for i in range(1, 16):
            k += edges[i] <= tail
        at_min = tail <= edges[0]
        matched = at_min or 1 <= k <= 14
        k = 0 if at_min else min(max(k, 0), 14)
    else:  # the bin np.histogram itself would put the tail in (last bin closed)
        for i in range(1, 15):
            k += edges[i] <= tail
        matched = True
    lower, upper = edges[k], edges[k + 1]
    if k == 14:
        upper = np.nextafter(upper, np.inf)  # the last bin includes the maximum
    count = 0
    for i in range(len(v)):
        if v[i] >= lower and v[i] < upper:
            count += 1
    exceeds = matched and count <= 20
    valid = finite and math.isfinite(tail)
    score = 21.0 / (count + 1.0) if matched else 0.0
    return _judge(exceeds, valid, classic), score


@_jit
def _first_hour_average(t: np.ndarray, v: np.ndarray, tail_d: float, full_duration: int,
                        classic: bool) -> tuple[int, float]:  # fmt: skip
    start = t[len(t) - 1] - full_duration
    a = np.searchsorted(t, start, side="right")  # ts > start
    z = np.searchsorted(t, start + 3600, side="left")  # ts < start + 3600
    if z <= a:
        return _sigma(math.nan, math.nan, classic)
    v0 = v[0]
    total = 0.0
    for i in range(a, z):
        total += v[i] - v0
    mean = total / (z - a)
    ss = 0.0
    for i in range(a, z):
        e = (v[i] - v0) - mean
        ss += e * e
    std = math.sqrt(ss / (z - a - 1)) if z - a > 1 else math.nan
    return _sigma(tail_d - mean, std, classic)


@_jit
def _grubbs(mean: float, std: float, tail_d: float, g: float, classic: bool) -> tuple[int, float]:
    z = (tail_d - mean) / std
    if not classic:
        z = abs(z)  # fix: two-sided
    zero = std == 0
    exceeds = z > g and not zero
    score = 0.0 if zero or not math.isfinite(z) else z / g
    if score != score:
        score = 0.0
    valid = zero or (math.isfinite(z) and math.isfinite(g))
    return _judge(exceeds, valid, classic), score


@_jit
def _loop(t2d: np.ndarray, v2d: np.ndarray, rows: np.ndarray, codes: np.ndarray, g: float,
          full_duration: int, classic: bool, stop_at: int,
          votes: np.ndarray, scores: np.ndarray, decided: np.ndarray) -> None:  # fmt: skip
    """For each row ``rows[r]``: the algorithms ``codes`` in order, into ``votes[r, j]`` /
    ``scores[r, j]``; stop once ``stop_at`` of them voted against (False, or None unless
    ``classic``), and mark the row ``decided``."""
    for r in range(len(rows)):
        t, v = t2d[rows[r]], v2d[rows[r]]
        lo, hi, mean, std, tail_d = _moments(v)
        against = 0
        for j in range(len(codes)):
            c = codes[j]
            if c == 0:
                vote, score = _histogram_bins(v, lo, hi, classic)
            elif c == 1:
                vote, score = _first_hour_average(t, v, tail_d, full_duration, classic)
            elif c == 2:
                vote, score = _sigma(tail_d - mean, std, classic)
            else:
                vote, score = _grubbs(mean, std, tail_d, g, classic)
            votes[r, j], scores[r, j] = vote, score
            against += vote == FALSE or (vote == NONE and not classic)
            if against >= stop_at:
                decided[r] = True
                break


def _grubbs_g(n: int) -> float:
    from skyline.analysis.algorithms.classic.grubbs import grubbs_critical

    return grubbs_critical(n)


def run_rows(name: str, t2d: np.ndarray, v2d: np.ndarray, classic: bool,
             full_duration: int) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """One algorithm's (votes, scores) on every row: its registered kernel."""
    m, n = v2d.shape
    votes = np.full((m, 1), NONE, np.int8)
    scores = np.zeros((m, 1))
    if m and n:
        codes = np.array([CODES[name]], np.int64)
        never = 2  # one vote never reaches two against: no row stops early
        _loop(t2d, v2d, np.arange(m), codes, _grubbs_g(n), full_duration, classic, never,
              votes, scores, np.zeros(m, np.bool_))  # fmt: skip
    return votes[:, 0], scores[:, 0]


def leading_codes(algorithms: Sequence[str]) -> np.ndarray:
    """The codes of the ensemble's leading algorithms that have a compiled row kernel
    (none twice)."""
    out: list[int] = []
    for name in algorithms:
        if name not in CODES or CODES[name] in out:
            break
        out.append(CODES[name])
    return np.array(out, np.int64)


def first_votes(t2d: np.ndarray, v2d: np.ndarray, rows: np.ndarray, codes: np.ndarray,
                stop_at: int, classic: bool,
                full_duration: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """The algorithms ``codes`` on rows ``rows`` of ``t2d``/``v2d`` (read in place), in
    order, each row stopping once ``stop_at`` voted against it: (votes, scores, decided),
    votes -2 where an algorithm did not run."""
    m, n = len(rows), v2d.shape[1]
    votes = np.full((m, len(codes)), -2, np.int8)
    scores = np.full((m, len(codes)), np.nan)
    decided = np.zeros(m, np.bool_)
    if m and n:
        _loop(t2d, v2d, np.ascontiguousarray(rows, np.int64), codes, _grubbs_g(n),
              full_duration, classic, stop_at, votes, scores, decided)  # fmt: skip
    return votes, scores, decided
