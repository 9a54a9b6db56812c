"""Compiled row kernels (numba) of the reference's nine algorithms, one function each.

Each takes one row (its timestamps ``t`` and values ``v``, and the statistics several
of them share: ``Moments``) and returns ``(vote, score)`` exactly as the numpy kernels
they replaced did (docs/algorithms.md has the quirks and the scores).  ``_fused`` runs
them over many rows in one loop; the registered kernels and the ensemble both go
through that loop, so every path gives bit-identical results.  ``ks_test`` is split:
``ks_window`` finds its two windows here, and the test itself (scipy, statsmodels)
runs in Python for the rows that need it.

The numpy kernels are the tests' fast twins (``tests/unit/test_rows_twins.py``); the
exact-arithmetic twins of ``tests/unit/test_algorithms_twins.py`` judge both.  The
leading ``_`` keeps this module out of the registry (it defines no algorithm).
"""

from __future__ import annotations

import math

import numpy as np

from skyline.analysis.algorithms.classic._base import FALSE, NONE, TRUE
from skyline.compiled import jit


@jit
def lanes_sum(v: np.ndarray, v0: float, mean: float, n: int) -> float:
    """The sum of ``(v[i] - v0) - mean`` over ``i < n``, in four interleaved lanes
    (element i into lane i % 4) added as (l0 + l1) + (l2 + l3): four independent
    chains run about three times faster than one, and are no less exact."""
    s0 = s1 = s2 = s3 = 0.0
    q = n - n % 4
    for i in range(0, q, 4):
        s0 += (v[i] - v0) - mean
        s1 += (v[i + 1] - v0) - mean
        s2 += (v[i + 2] - v0) - mean
        s3 += (v[i + 3] - v0) - mean
    for i in range(q, n):
        s0 += (v[i] - v0) - mean
    return (s0 + s1) + (s2 + s3)


@jit
def lanes_sq(v: np.ndarray, v0: float, mean: float, n: int) -> float:
    """The sum of ``((v[i] - v0) - mean) ** 2`` over ``i < n``, as ``lanes_sum``."""
    s0 = s1 = s2 = s3 = 0.0
    q = n - n % 4
    for i in range(0, q, 4):
        e0, e1 = (v[i] - v0) - mean, (v[i + 1] - v0) - mean
        e2, e3 = (v[i + 2] - v0) - mean, (v[i + 3] - v0) - mean
        s0, s1, s2, s3 = s0 + e0 * e0, s1 + e1 * e1, s2 + e2 * e2, s3 + e3 * e3
    for i in range(q, n):
        e = (v[i] - v0) - mean
        s0 += e * e
    return (s0 + s1) + (s2 + s3)


@jit
def moments(v: np.ndarray) -> tuple[float, float, float, float, float]:
    """(min, max, mean of d, sample std of d, tail average of d) of one row, where
    ``d = v - v[0]``; min and max are NaN when the row holds a NaN.  The extremes are
    found in the pass that sums (as ``lanes_sum``), the squares in a second one."""
    n = len(v)
    v0 = v[0]
    lo0 = lo1 = lo2 = lo3 = hi0 = hi1 = hi2 = hi3 = v0
    s0 = s1 = s2 = s3 = 0.0
    q = n - n % 4
    for i in range(0, q, 4):
        a, b, c, d = v[i], v[i + 1], v[i + 2], v[i + 3]
        lo0, hi0, s0 = min(lo0, a), max(hi0, a), s0 + ((a - v0) - 0.0)
        lo1, hi1, s1 = min(lo1, b), max(hi1, b), s1 + ((b - v0) - 0.0)
        lo2, hi2, s2 = min(lo2, c), max(hi2, c), s2 + ((c - v0) - 0.0)
        lo3, hi3, s3 = min(lo3, d), max(hi3, d), s3 + ((d - v0) - 0.0)
    for i in range(q, n):
        lo0, hi0, s0 = min(lo0, v[i]), max(hi0, v[i]), s0 + ((v[i] - v0) - 0.0)
    total = (s0 + s1) + (s2 + s3)  # lanes_sum(v, v0, 0.0, n), bit for bit
    lo, hi = min(min(lo0, lo1), min(lo2, lo3)), max(max(hi0, hi1), max(hi2, hi3))
    if total != total:  # a NaN, or inf - inf: min and max say whether a value is NaN
        for i in range(n):
            if v[i] != v[i]:
                lo = hi = math.nan
    mean = total / n
    ss = lanes_sq(v, v0, mean, n)
    std = math.sqrt(ss / (n - 1)) if n > 1 else math.nan
    return lo, hi, mean, std, tail(v, v0)


@jit
def tail(v: np.ndarray, v0: float) -> float:
    """tail_avg of ``v - v0``; of ``v`` itself when ``v0`` is 0."""
    n = len(v)
    if n < 3:
        return v[n - 1] - v0
    return ((v[n - 1] - v0) + (v[n - 2] - v0) + (v[n - 3] - v0)) / 3


@jit
def judge(exceeds: bool, valid: bool, classic: bool) -> int:
    if not classic and not valid:
        return NONE
    return TRUE if exceeds else FALSE


@jit
def against(vote: int, classic: bool) -> bool:
    """Whether a vote counts against a series reaching consensus: False, and None too
    in default mode (classic counts None towards "anomalous", as the reference)."""
    return vote == FALSE or (vote == NONE and not classic)


@jit
def sigma(diff: float, std: float, classic: bool) -> tuple[int, float]:
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
    return judge(exceeds, valid, classic), score


@jit
def histogram_bins(v: np.ndarray, lo: float, hi: float, classic: bool) -> tuple[int, float]:
    avg = tail(v, 0.0)
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
            k += edges[i] <= avg
        at_min = avg <= edges[0]
        matched = at_min or 1 <= k <= 14
        k = 0 if at_min else min(max(k, 0), 14)
    else:  # the bin np.histogram itself would put the tail in (last bin closed)
        for i in range(1, 15):
            k += edges[i] <= avg
        matched = True
    lower, upper = edges[k], edges[k + 1]
    if k == 14:
        upper = np.nextafter(upper, np.inf)  # the last bin includes the maximum
    count = 0
    for i in range(len(v)):
        if v[i] >= lower and v[i] < upper:
            count += 1
    exceeds = matched and count <= 20
    valid = finite and math.isfinite(avg)
    score = 21.0 / (count + 1.0) if matched else 0.0
    return judge(exceeds, valid, classic), score


@jit
def first_hour_average(t: np.ndarray, v: np.ndarray, tail_d: float, full_duration: int,
                        classic: bool) -> tuple[int, float]:  # fmt: skip
    start = t[len(t) - 1] - full_duration
    a = np.searchsorted(t, start, side="right")  # ts > start
    z = np.searchsorted(t, start + 3600, side="left")  # ts < start + 3600
    if z <= a:
        return sigma(math.nan, math.nan, classic)
    v0, k = v[0], z - a
    mean = lanes_sum(v[a:z], v0, 0.0, k) / k
    ss = lanes_sq(v[a:z], v0, mean, k)
    std = math.sqrt(ss / (k - 1)) if k > 1 else math.nan
    return sigma(tail_d - mean, std, classic)


@jit
def grubbs(mean: float, std: float, tail_d: float, g: float, classic: bool) -> tuple[int, float]:
    z = (tail_d - mean) / std
    if not classic:
        z = abs(z)  # fix: two-sided
    zero = std == 0
    exceeds = z > g and not zero
    score = 0.0 if zero or not math.isfinite(z) else z / g
    if score != score:
        score = 0.0
    valid = zero or (math.isfinite(z) and math.isfinite(g))
    return judge(exceeds, valid, classic), score


@jit
def ks_window(t: np.ndarray, v: np.ndarray, now: float, classic: bool) -> tuple[int, int, int]:
    """ks_test's windows: ``(verdict, lo, hi)``, the reference window ``v[lo:hi]`` (the
    hour before the last 10 minutes) and the probe ``v[hi:]``.  ``verdict`` is NONE when
    classic mode has no clock, FALSE when the windows are too short or the reference is
    constant (score 0 either way), TRUE when scipy must decide."""
    n = len(t)
    if classic:
        if now != now:
            return NONE, 0, 0
        base = now
    else:  # fix: windows end at the series' last timestamp, not the wall clock
        base = float(t[n - 1])
    lo = int(np.searchsorted(t, math.ceil(base - 3600), side="left"))
    hi = int(np.searchsorted(t, math.ceil(base - 600), side="left"))
    if hi - lo < 20 or n - hi < 20:
        return FALSE, lo, hi
    first = v[lo]
    for i in range(lo + 1, hi):
        if v[i] != first:
            return TRUE, lo, hi
    return FALSE, lo, hi


@jit
def mean_subtraction_cumulation(v: np.ndarray, classic: bool) -> tuple[int, float]:
    n = len(v)
    if n < 2:
        return sigma(math.nan, math.nan, classic)
    v0 = v[0]
    mean = lanes_sum(v, v0, 0.0, n - 1) / (n - 1)
    ddof = 0 if classic else 1  # classic: the numba path's ddof 0
    ss = lanes_sq(v, v0, mean, n - 1)
    std = math.sqrt(ss / (n - 1 - ddof)) if n - 1 > ddof else math.nan
    return sigma((v[n - 1] - v0) - mean, std, classic)


@jit
def median_absolute_deviation(v: np.ndarray, has_nan: bool, scratch: np.ndarray,
                              classic: bool) -> tuple[int, float]:  # fmt: skip
    """``has_nan``: numpy's median of a row with a NaN is NaN, numba's need not be."""
    if has_nan:  # then every statistic is NaN: the vote numpy's kernel gave
        return judge(False, False, classic), 0.0
    n = len(v)
    med = np.median(v)
    for i in range(n):
        scratch[i] = abs(v[i] - med)
    last = scratch[n - 1]
    mad = np.median(scratch[:n])
    zero = mad == 0
    stat = last / mad
    exceeds = not zero and stat > 6
    score = 0.0 if zero or not math.isfinite(stat) else stat / 6
    valid = math.isfinite(mad) and math.isfinite(last)
    return judge(exceeds, valid, classic), score


@jit
def stddev_from_moving_average(v: np.ndarray, w: np.ndarray, sw: float, sw2: float,
                               classic: bool) -> tuple[int, float]:  # fmt: skip
    """pandas ``ewm(com=50)`` mean and (bias-corrected) std of the shifted values; ``w``
    the weights (newest last), ``sw`` and ``sw2`` the sums of them and of their squares."""
    n = len(v)
    v0 = v[0]
    total = 0.0
    for i in range(n):
        total += (v[i] - v0) * w[i]
    mu = total / sw
    ss = 0.0
    for i in range(n):
        e = (v[i] - v0) - mu
        ss += e * e * w[i]
    den = sw * sw - sw2
    var = ss / sw * ((sw * sw) / den) if den > 0 else math.nan
    std = math.sqrt(var if var > 0 else 0.0) if var == var else math.nan
    return sigma((v[n - 1] - v0) - mu, std, classic)


@jit
def least_squares(t: np.ndarray, v: np.ndarray, mean_d: float, classic: bool) -> tuple[int, float]:
    n = len(v)
    if n < 3:
        return FALSE, 0.0
    tm = 0.0
    for i in range(n):
        tm += float(t[i])
    tm /= n
    sxy = sxx = 0.0
    v0 = v[0]
    for i in range(n):
        xc = float(t[i]) - tm
        sxy += xc * ((v[i] - v0) - mean_d)
        sxx += xc * xc
    slope = sxy / sxx
    em = 0.0
    for i in range(n):
        em += ((v[i] - v0) - mean_d) - slope * (float(t[i]) - tm)
    em /= n
    ss = 0.0
    for i in range(n):
        e = (((v[i] - v0) - mean_d) - slope * (float(t[i]) - tm)) - em
        ss += e * e
    std = math.sqrt(ss / n)  # scipy.std: population
    tail_e = 0.0
    for i in range(n - 3, n):
        tail_e += ((v[i] - v0) - mean_d) - slope * (float(t[i]) - tm)
    tail_e /= 3
    vote, score = sigma(tail_e, std, classic)
    # round(std) != 0 and round(tail) != 0, i.e. both above 0.5 in magnitude
    if vote == TRUE and not (std > 0.5 and abs(tail_e) > 0.5):
        vote = FALSE
    return vote, score
