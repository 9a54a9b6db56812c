"""Each algorithm against a slow, obviously-correct twin written with plain loops.

The twins use exact rational arithmetic (``fractions.Fraction``) for means,
variances, regressions and the EWMA weights, so they are the mathematical truth;
scipy is used only for the t quantile, the KS test and the ADF test.  Verdicts
must be equal, scores equal within a tight tolerance.
"""

from __future__ import annotations

import math
import warnings
from fractions import Fraction as F

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.tsa.stattools import adfuller

from skyline.analysis.algorithms import Context, prepare_arrays, tail_avg
from skyline.analysis.algorithms.classic.first_hour_average import first_hour_average
from skyline.analysis.algorithms.classic.grubbs import grubbs
from skyline.analysis.algorithms.classic.histogram_bins import histogram_bins
from skyline.analysis.algorithms.classic.ks_test import ks_test
from skyline.analysis.algorithms.classic.least_squares import least_squares
from skyline.analysis.algorithms.classic.mean_subtraction_cumulation import (
    mean_subtraction_cumulation,
)
from skyline.analysis.algorithms.classic.median_absolute_deviation import (
    median_absolute_deviation,
)
from skyline.analysis.algorithms.classic.stddev_from_average import stddev_from_average
from skyline.analysis.algorithms.classic.stddev_from_moving_average import (
    stddev_from_moving_average,
)

NOW = 1_700_000_000
MODES = ("classic", "default")


# Twins -----------------------------------------------------------------------------------
def twin_tail(vals):
    if len(vals) < 3:
        return vals[-1]
    return (vals[-1] + vals[-2] + vals[-3]) / 3


def exact_tail(vals):
    if len(vals) < 3:
        return F(vals[-1])
    return (F(vals[-1]) + F(vals[-2]) + F(vals[-3])) / 3


def exact_mean(xs):
    return sum(F(x) for x in xs) / len(xs)


def exact_var(xs, ddof):
    mu = exact_mean(xs)
    return sum((F(x) - mu) ** 2 for x in xs) / (len(xs) - ddof)


def sigma_twin(diff, var, mode, k=3):
    """|diff| > k * sqrt(var) decided exactly; score |diff| / (k * std)."""
    if var is None:  # statistic undefined: NaN in the reference
        return (False if mode == "classic" else None), 0.0
    exceeds = diff * diff > k * k * var
    if var == 0:
        return exceeds, (math.inf if diff != 0 else 0.0)
    return exceeds, float(abs(diff)) / (k * math.sqrt(var))


def twin_histogram_bins(ts, vals, mode):
    lo, hi = min(vals), max(vals)
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    step = (hi - lo) / 15
    edges = [i * step + lo for i in range(16)]
    edges[15] = hi
    counts = [0] * 15
    for x in vals:
        for k in range(15):
            if edges[k] <= x and (x < edges[k + 1] or (k == 14 and x <= edges[15])):
                counts[k] += 1
                break
    t = twin_tail(vals)
    if mode == "classic":
        match = None
        for k in range(15):
            if (k == 0 and t <= edges[0]) or (k > 0 and edges[k] <= t < edges[k + 1]):
                match = k
                break
        if match is None:
            return False, 0.0
        return counts[match] <= 20, 21 / (counts[match] + 1)
    k = 0
    for j in range(1, 15):
        if edges[j] <= t:
            k = j
    return counts[k] <= 20, 21 / (counts[k] + 1)


def twin_first_hour_average(ts, vals, mode, full_duration):
    start = ts[-1] - full_duration
    window = [x for s, x in zip(ts, vals, strict=True) if start < s < start + 3600]
    if len(window) < 2:
        return sigma_twin(None, None, mode)
    return sigma_twin(exact_tail(vals) - exact_mean(window), exact_var(window, 1), mode)


def twin_stddev_from_average(ts, vals, mode):
    return sigma_twin(exact_tail(vals) - exact_mean(vals), exact_var(vals, 1), mode)


def twin_grubbs(ts, vals, mode):
    n = len(vals)
    var = exact_var(vals, 1)
    if var == 0:
        return False, 0.0
    z = float(exact_tail(vals) - exact_mean(vals)) / math.sqrt(var)
    tq = stats.t.isf(0.05 / (2 * n), n - 2)
    g = ((n - 1) / math.sqrt(n)) * math.sqrt(tq * tq / (n - 2 + tq * tq))
    if mode != "classic":
        z = abs(z)
    return z > g, z / g


def twin_ks_test(ts, vals, mode, now):
    base = now if mode == "classic" else ts[-1]
    reference = [x for s, x in zip(ts, vals, strict=True) if base - 3600 <= s < base - 600]
    probe = [x for s, x in zip(ts, vals, strict=True) if s >= base - 600]
    if len(reference) < 20 or len(probe) < 20 or len(set(reference)) == 1:
        return False, 0.0
    res = stats.ks_2samp(reference, probe)
    flagged = res.pvalue < 0.05 and res.statistic > 0.5 and adf_pvalue(reference) < 0.05
    return bool(flagged), res.statistic / 0.5


def adf_pvalue(x):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return adfuller(x, 10)[1]


def twin_mean_subtraction_cumulation(ts, vals, mode):
    head = vals[:-1]
    ddof = 0 if mode == "classic" else 1
    return sigma_twin(F(vals[-1]) - exact_mean(head), exact_var(head, ddof), mode)


def exact_median(xs):
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def twin_median_absolute_deviation(ts, vals, mode):
    med = exact_median([F(x) for x in vals])
    dev = [abs(F(x) - med) for x in vals]
    mad = exact_median(dev)
    if mad == 0:
        return False, 0.0
    stat = dev[-1] / mad
    return stat > 6, float(stat) / 6


def twin_stddev_from_moving_average(ts, vals, mode):
    """pandas ewm(com=50, adjust=True) mean and bias-corrected std at the last point,
    from the closed form with exact integer weights 50^(n-1-i) * 51^i."""
    n = len(vals)
    w = [50 ** (n - 1 - i) * 51**i for i in range(n)]
    s, s2 = sum(w), sum(x * x for x in w)
    a = sum(wi * F(x) for wi, x in zip(w, vals, strict=True))
    b = sum(wi * F(x) * F(x) for wi, x in zip(w, vals, strict=True))
    mean = a / s
    var = (b * s - a * a) / (s * s) * F(s * s, s * s - s2)
    return sigma_twin(F(vals[-1]) - mean, var, mode)


def twin_least_squares(ts, vals, mode):
    n = len(vals)
    x = [F(t) for t in ts]
    y = [F(v) for v in vals]
    sx, sy = sum(x), sum(y)
    sxx = sum(a * a for a in x)
    sxy = sum(a * b for a, b in zip(x, y, strict=True))
    m = (n * sxy - sx * sy) / (n * sxx - sx * sx)
    c = (sy - m * sx) / n
    err = [b - (m * a + c) for a, b in zip(x, y, strict=True)]
    var = exact_var(err, 0)
    t = (err[-1] + err[-2] + err[-3]) / 3
    flagged = t * t > 9 * var and var > F(1, 4) and abs(t) > F(1, 2)
    score = float(abs(t)) / (3 * math.sqrt(var)) if var else (math.inf if t else 0.0)
    return flagged, score


# Series ----------------------------------------------------------------------------------
def _ts(n, step=60):
    return [NOW - step * (n - 1 - i) for i in range(n)]


def hand_picked(n=240):
    rng = np.random.default_rng(1)
    noise = rng.standard_normal(n)
    out = {
        "constant": [0.1] * n,
        "spike_at_end": [1.0] * (n - 1) + [1000.0],
        "negative_dip": list(-50 + noise[:-1]) + [-80.0],
        "negative_spike": list(-50 + noise[:-1]) + [-20.0],
        "step_change": [0.0] * (n // 2) + list(10 + 0.1 * noise[n // 2 :]),
        "linear_trend": [3.0 * i + 7 for i in range(n)],
        "huge": list(1e12 + 1e9 * noise[:-1]) + [1e12 + 9e9],
        "tiny": list(1e-12 * noise[:-1]) + [9e-12],
        "alternating": [1.0 if i % 2 else -1.0 for i in range(n)],
        "alternating_spike": [1.0 if i % 2 else -1.0 for i in range(n - 3)] + [30.0] * 3,
        "integers_spike": list(np.round(100 + 5 * noise[:-2])) + [180.0, 190.0],
        "max_at_end": list(noise[:-3]) + [5.0, 5.0, 5.0],
        "min_at_end": list(noise[:-3]) + [-5.0, -5.0, -5.0],
    }
    return {k: (_ts(n), [float(x) for x in v]) for k, v in out.items()}


def random_series(count=30, n=200):
    rng = np.random.default_rng(20240601)
    for i in range(count):
        kind = i % 5
        if kind == 0:
            v = rng.normal(rng.uniform(-100, 100), rng.uniform(0.1, 10), n)
        elif kind == 1:
            v = rng.poisson(rng.uniform(0.5, 20), n).astype(float)
        elif kind == 2:
            v = np.cumsum(rng.standard_normal(n))
        elif kind == 3:
            v = np.sin(np.arange(n) / 15) * 10 + rng.standard_normal(n)
        else:
            v = rng.lognormal(0, 1, n)
        if i % 3 == 0:
            v[-rng.integers(1, 4) :] += rng.choice([-1, 1]) * rng.uniform(5, 50) * (v.std() + 1)
        yield f"random{i}", (_ts(n, int(rng.integers(10, 120))), [float(x) for x in v])


CASES = list(hand_picked().items()) + list(random_series())
TWINS = {
    "histogram_bins": (histogram_bins, twin_histogram_bins),
    "stddev_from_average": (stddev_from_average, twin_stddev_from_average),
    "grubbs": (grubbs, twin_grubbs),
    "mean_subtraction_cumulation": (mean_subtraction_cumulation, twin_mean_subtraction_cumulation),
    "median_absolute_deviation": (median_absolute_deviation, twin_median_absolute_deviation),
    "stddev_from_moving_average": (stddev_from_moving_average, twin_stddev_from_moving_average),
    "least_squares": (least_squares, twin_least_squares),
}


def check(result, expected, label):
    verdict, score = expected
    assert result.anomalous == verdict, label
    if math.isinf(score):
        assert math.isinf(result.score), label
    else:
        assert result.score == pytest.approx(score, rel=1e-9, abs=1e-9), label


# Tests -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(TWINS))
@pytest.mark.parametrize("mode", MODES)
def test_algorithm_matches_twin(name, mode):
    fast, twin = TWINS[name]
    ctx = Context(mode=mode, now=NOW)
    for label, (ts, vals) in CASES:
        check(fast(prepare_arrays(ts, vals), ctx), twin(ts, vals, mode), f"{label} {mode}")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("full_duration", [86400, 240 * 60, 200 * 60])
def test_first_hour_average_matches_twin(mode, full_duration):
    ctx = Context(mode=mode, now=NOW, full_duration=full_duration)
    for label, (ts, vals) in CASES:
        expected = twin_first_hour_average(ts, vals, mode, full_duration)
        check(first_hour_average(prepare_arrays(ts, vals), ctx), expected, f"{label} {mode}")


def ks_cases():
    rng = np.random.default_rng(5)
    n = 720  # 10 s step: 300 reference and 60 probe points
    ts = _ts(n, 10)
    base = rng.standard_normal(n)
    shifted = base.copy()
    shifted[-60:] += 5
    walk = np.cumsum(rng.standard_normal(n))
    lagged = [t - 400 for t in ts]  # the wall-clock windows miss the newest 400 s
    return {
        "noise": (ts, list(base)),
        "level_shift": (ts, list(shifted)),
        "walk_shift": (ts, list(walk[:-60]) + list(walk[-60:] + 30)),
        "lagged_shift": (lagged, list(shifted)),
        "constant_reference": (ts, [1.0] * (n - 60) + list(base[-60:])),
        "sparse_60s": (_ts(300), list(rng.standard_normal(300))),
    }


@pytest.mark.parametrize("mode", MODES)
def test_ks_test_matches_twin(mode):
    ctx = Context(mode=mode, now=NOW)
    flagged = 0
    for label, (ts, vals) in ks_cases().items():
        expected = twin_ks_test(ts, vals, mode, NOW)
        check(ks_test(prepare_arrays(ts, vals), ctx), expected, f"{label} {mode}")
        flagged += expected[0]
    assert flagged >= 1  # the cases do exercise a True verdict


def test_ks_test_modes_differ_on_lagging_data():
    ts, vals = ks_cases()["lagged_shift"]
    series = prepare_arrays(ts, vals)
    assert ks_test(series, Context("default", NOW)).anomalous is True
    assert ks_test(series, Context("classic", NOW)).anomalous is False


def test_tail_avg_matches_twin():
    for label, (_, vals) in CASES:
        assert tail_avg(vals) == twin_tail(vals), label
        assert tail_avg(np.array(vals)) == twin_tail(vals), label
    assert tail_avg([5.0]) == 5.0
    assert tail_avg([1.0, 4.0]) == 4.0
    assert tail_avg([1.0, 1.0, 1000.0]) == 334.0


def test_stddev_from_moving_average_matches_pandas():
    """The closed form equals pandas' online ewm (the reference's implementation)."""
    for label, (ts, vals) in CASES:
        s = pd.Series(vals)
        mean = s.ewm(com=50, adjust=True).mean().iloc[-1]
        std = s.ewm(com=50, adjust=True).std(bias=False).iloc[-1]
        expected = abs(vals[-1] - mean) > 3 * std
        r = stddev_from_moving_average(prepare_arrays(ts, vals), Context("classic"))
        if std > 1e-6 * max(1.0, abs(mean)):  # pandas' own rounding decides constant cases
            assert r.anomalous == expected, label
            assert r.score == pytest.approx(abs(vals[-1] - mean) / (3 * std), rel=1e-6), label


def test_histogram_counts_match_numpy():
    for label, (ts, vals) in CASES:
        counts, edges = np.histogram(vals, bins=15)
        verdict, score = twin_histogram_bins(ts, vals, "default")
        t = twin_tail(vals)
        k = min(max(int(np.searchsorted(edges, t, side="right")) - 1, 0), 14)
        assert score == 21 / (counts[k] + 1), label
        assert verdict == (counts[k] <= 20), label


def test_histogram_classic_misses_the_max():
    vals = [float(i % 50) for i in range(300)] + [200.0, 200.0, 200.0]
    series = prepare_arrays(_ts(len(vals)), vals)
    assert histogram_bins(series, Context("classic")).anomalous is False
    assert histogram_bins(series, Context("default")).anomalous is True


def test_grubbs_classic_is_one_sided():
    ts, vals = hand_picked()["negative_dip"]
    series = prepare_arrays(ts, vals)
    assert grubbs(series, Context("classic")).anomalous is False
    assert grubbs(series, Context("default")).anomalous is True


def test_errors_and_degenerate_inputs_give_none_or_false():
    one = prepare_arrays([NOW], [1.0])
    for name, (fn, _) in TWINS.items():
        if name == "histogram_bins":  # one point is one (sparse) bin: True, as the reference
            continue
        for mode in MODES:
            r = fn(one, Context(mode, NOW))
            assert r.anomalous in (None, False)
            assert r.score == 0.0 or math.isinf(r.score)
    empty = prepare_arrays([], [])
    assert histogram_bins(empty).anomalous is None
    assert stddev_from_average(([NOW - 60, NOW], [1e308, -1e308]), Context()).anomalous is None
