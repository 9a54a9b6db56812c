"""Boundary's algorithms: each guard of detect_drop_off_cliff, a real cliff and a gentle
decline, greater_than / less_than, min_average, and a slow obviously-correct twin of
the cliff compared on many random series."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from skyline.analysis.boundary.algorithms import (
    Judgement,
    below_min_average,
    detect_drop_off_cliff,
    greater_than,
    judge,
    less_than,
    trigger_factor,
)

STEP = 60


def series(values, step: int = STEP, end: int = 1_700_000_000):
    v = np.asarray(values, dtype=np.float64)
    t = end - step * np.arange(len(v))[::-1]
    return t.astype(np.int64), v


def steady_then(level: float, last: float, n: int = 60, noise: float = 0.0, seed: int = 1):
    rng = np.random.default_rng(seed)
    values = level + rng.normal(0, noise, n) if noise else np.full(n, level)
    values[-1] = last
    return series(values)


def slow_cliff(t: list[int], v: list[float], trigger: float = 0.0) -> Judgement:
    """The cliff written plainly, one Python step per rule in docs/boundary.md."""
    if len(v) < 30:
        return Judgement(False, skip="too_short")
    gaps = [b - a for a, b in zip(t[-30:], t[-30:][1:], strict=False)]
    res = statistics.median(gaps)
    if res <= 0:
        return Judgement(False, skip="no_resolution")
    window = [x for ts, x in zip(t, v, strict=True) if ts > t[-1] - 10 * res]
    if len(window) < 4:
        return Judgement(False, skip="sparse")
    low, high = min(window), max(window)
    if low < 0:
        return Judgement(False, skip="negative")
    if high == 0:
        return Judgement(False, skip="zero")
    if low == high:
        return Judgement(False, skip="flat")
    if sum(1 for x in window if x <= low + 0.05 * (high - low)) >= 2:
        return Judgement(False, skip="similar_lows")
    mean = sum(window) / len(window)
    if trigger > 0:
        factor = trigger
    elif high > 100:
        factor = 100.0
    elif high < 20:
        factor = mean / 2
    else:
        factor = 15.0
    last = window[-1] if window[-1] >= 0.1 else 0.1
    ratio = mean / last
    return Judgement(int(ratio) > factor, ratio, factor)


# --- detect_drop_off_cliff: a real cliff, a gentle decline --------------------------------
def test_a_real_cliff_is_a_breach():
    t, v = steady_then(1000.0, 5.0, noise=3.0)
    j = detect_drop_off_cliff(t, v)
    assert j.breach and not j.skip
    assert j.limit == 100.0  # max > 100
    assert j.score == pytest.approx(np.mean(v[-10:]) / 5.0)


def test_a_drop_to_zero_divides_as_a_tenth():
    t, v = steady_then(50.0, 0.0, noise=1.0)
    j = detect_drop_off_cliff(t, v)
    assert j.breach and j.score == pytest.approx(np.mean(v[-10:]) / 0.1)


def test_a_gentle_decline_is_not_a_cliff():
    t, v = series(np.linspace(1000, 600, 60))
    j = detect_drop_off_cliff(t, v)
    assert not j.breach and not j.skip and j.score < 2


def test_a_half_drop_is_not_a_cliff():
    t, v = steady_then(80.0, 40.0, noise=1.0)
    j = detect_drop_off_cliff(t, v)
    assert not j.breach and j.limit == 15.0


# --- its guards ---------------------------------------------------------------------------
def test_too_short():
    t, v = steady_then(1000.0, 1.0, n=29)
    assert detect_drop_off_cliff(t, v).skip == "too_short"
    t, v = steady_then(1000.0, 1.0, n=30, noise=1.0)
    assert detect_drop_off_cliff(t, v).breach


def test_flat():
    t, v = series(np.full(60, 7.0))
    assert detect_drop_off_cliff(t, v) == Judgement(False, skip="flat")


def test_all_zero():
    t, v = series(np.zeros(60))
    assert detect_drop_off_cliff(t, v).skip == "zero"


def test_negative_values_in_the_window():
    t, v = steady_then(1000.0, 1.0, noise=1.0)
    v[-5] = -1.0
    assert detect_drop_off_cliff(t, v).skip == "negative"
    v[-5] = 1000.0
    v[0] = -1.0  # a negative value before the window does not matter
    assert detect_drop_off_cliff(t, v).breach


def test_sparse_window():
    # 40 points a minute apart, then a two-hour gap: the window (10 steps) holds 1 point
    t, v = steady_then(1000.0, 1.0, n=41, noise=1.0)
    t[-1] = t[-2] + 7200
    assert detect_drop_off_cliff(t, v).skip == "sparse"


def test_similar_low_points_mean_the_low_is_not_new():
    t, v = steady_then(1000.0, 5.0, noise=1.0)
    v[-2] = 6.0  # the previous point was low already
    assert detect_drop_off_cliff(t, v).skip == "similar_lows"
    v[-2] = 1000.0
    assert detect_drop_off_cliff(t, v).breach


def test_trigger_factor_by_range():
    assert trigger_factor(150.0, 120.0) == 100.0
    assert trigger_factor(100.5, 90.0) == 100.0
    assert trigger_factor(100.0, 90.0) == 15.0
    assert trigger_factor(20.0, 10.0) == 15.0
    assert trigger_factor(19.0, 12.0) == 6.0


def test_small_series_use_half_the_mean_as_trigger():
    t, v = steady_then(10.0, 1.0, noise=0.5)  # max < 20: factor = mean / 2 (about 4.6)
    j = detect_drop_off_cliff(t, v)
    assert j.limit == pytest.approx(np.mean(v[-10:]) / 2)
    assert j.breach  # ratio about 9 (last value 1 divides by 1)


def test_a_rule_limit_replaces_the_trigger_factor():
    t, v = steady_then(1000.0, 5.0, noise=1.0)  # ratio about 180
    assert detect_drop_off_cliff(t, v).breach
    assert not detect_drop_off_cliff(t, v, trigger=500.0).breach


def test_resolution_is_not_fooled_by_one_late_point():
    t, v = steady_then(1000.0, 5.0, noise=1.0)
    t[-1] = t[-2] + 1  # the newest point came a second after the previous one
    j = detect_drop_off_cliff(t, v)
    assert j.breach  # the window is still 10 one-minute steps


@pytest.mark.parametrize("seed", range(300))
def test_equal_to_the_slow_twin(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 80))
    level = float(rng.choice([0.0, 5.0, 15.0, 60.0, 500.0]))
    values = np.round(level + rng.normal(0, level / 10 + 0.5, n), int(rng.integers(0, 2)))
    if rng.random() < 0.5:
        values[-1] = float(rng.choice([0.0, 1.0, level / 50, level / 3]))
    if rng.random() < 0.2:
        values = np.abs(values)
    t, v = series(values, step=int(rng.choice([10, 60, 300])))
    if rng.random() < 0.2:
        t = np.sort(t - rng.integers(0, 40, n))
        t = np.unique(t)
        v = v[-len(t) :]
    trigger = float(rng.choice([0.0, 0.0, 20.0]))
    fast = detect_drop_off_cliff(t, v, trigger)
    slow = slow_cliff(t.tolist(), v.tolist(), trigger)
    assert (fast.breach, fast.skip) == (slow.breach, slow.skip)
    if not fast.skip:
        assert fast.score == pytest.approx(slow.score) and fast.limit == pytest.approx(slow.limit)


# --- greater_than, less_than, min_average -------------------------------------------------
def test_thresholds_are_strict():
    t, v = series([1.0, 2.0, 10.0])
    assert greater_than(t, v, 9.99).breach and not greater_than(t, v, 10.0).breach
    assert less_than(t, v, 10.01).breach and not less_than(t, v, 10.0).breach
    assert greater_than(t, v, 5.0) == Judgement(True, 10.0, 5.0)


def test_min_average_window_ends_at_the_judged_point():
    t, v = series([100.0] * 20 + [1.0] * 10)  # last 10 minutes average 1
    assert below_min_average(t, v, 5.0, 600)
    assert not below_min_average(t, v, 5.0, 1800)  # 30 minutes: average 67
    assert not below_min_average(t, v, 0.0, 600)
    j = judge("less_than", t, v, 2.0, min_average=5.0, min_average_seconds=600)
    assert j == Judgement(False, skip="min_average")
    assert judge("less_than", t, v, 2.0, min_average=5.0, min_average_seconds=1800).breach


def test_judge_dispatches_and_rejects_unknown():
    t, v = steady_then(1000.0, 5.0, noise=1.0)
    assert judge("detect_drop_off_cliff", t, v, 0.0).breach
    assert judge("greater_than", t, v, 4.0).breach
    with pytest.raises(ValueError):
        judge("sideways", t, v, 0.0)


def test_nan_free_scores():
    t, v = steady_then(1000.0, 5.0, noise=1.0)
    j = detect_drop_off_cliff(t, v)
    assert math.isfinite(j.score) and math.isfinite(j.limit)
