"""Score transformations of the default detector, each against a slow, obvious twin."""

from __future__ import annotations

import math

import numpy as np
import pytest

from skyline.algorithms.detectors import SpikeLevelDetector, combine_ratios
from skyline.algorithms.score_filters import RepeatSuppressor, SlidingMax

STEP = 300.0
T0 = 1_420_070_400.0


def slow_window_max(values: list[float], size: int) -> list[float]:
    """Max of the last ``size`` values after each push, by brute force."""
    return [max(values[max(0, i + 1 - size) : i + 1]) for i in range(len(values))]


def slow_repeat_filter(raw: list[float], window: int, damping: float) -> list[float]:
    """A score is damped when one of the previous ``window`` raw scores is >= it."""
    out = []
    for i, r in enumerate(raw):
        before = raw[max(0, i - window) : i]
        out.append(r * damping if r > 0 and before and max(before) >= r else r)
    return out


@pytest.mark.parametrize("size", [1, 2, 5, 60])
def test_sliding_max_matches_brute_force(size: int) -> None:
    rng = np.random.default_rng(size)
    # few distinct values so ties and plateaus are common
    values = rng.integers(-5, 6, 500).astype(float).tolist()
    sm = SlidingMax(size)
    got = []
    for v in values:
        sm.push(v)
        got.append(sm.value())
    assert got == slow_window_max(values, size)


def test_sliding_max_empty_is_minus_infinity() -> None:
    assert SlidingMax(3).value() == -math.inf


@pytest.mark.parametrize("window", [1, 7, 60])
def test_repeat_suppressor_matches_slow_twin(window: int) -> None:
    rng = np.random.default_rng(window)
    raw = np.round(rng.random(800), 2).tolist()  # rounded: many exact repeats
    raw[100:110] = [0.0] * 10
    rs = RepeatSuppressor(window, 0.5)
    got = []
    for r in raw:
        got.append(rs.damped(r))
        rs.push(r)
    assert got == slow_repeat_filter(raw, window, 0.5)


def test_repeat_suppressor_keeps_a_rising_run_and_damps_the_rest() -> None:
    rs = RepeatSuppressor(5, 0.5)
    out = []
    for r in [0.1, 0.5, 0.7, 0.9, 0.9, 0.8, 0.2, 0.0, 0.0, 0.0, 0.0, 0.3]:
        out.append(rs.damped(r))
        rs.push(r)
    assert out[:4] == [0.1, 0.5, 0.7, 0.9]  # each a new maximum: kept
    assert out[4:7] == [0.45, 0.4, 0.1]  # repeats of the 0.9 alert: halved
    assert out[7:11] == [0.0] * 4
    assert out[11] == 0.3  # the 0.9 left the 5-point window


def test_repeat_suppressor_disabled_and_non_finite() -> None:
    off = RepeatSuppressor(0, 0.5)
    off.push(1.0)
    assert off.damped(0.5) == 0.5
    rs = RepeatSuppressor(3, 0.5)
    rs.push(math.nan)
    rs.push(math.inf)
    assert rs.damped(0.5) == 0.5  # non-finite scores are not remembered


def test_combine_ratios_is_the_power_mean() -> None:
    rng = np.random.default_rng(5)
    for a, b in rng.random((200, 2)) * 4:
        assert combine_ratios(a, b, 4.0) == pytest.approx((a**4 + b**4) ** 0.25)
        assert combine_ratios(a, b, 4.0) == pytest.approx(combine_ratios(b, a, 4.0))
        assert max(a, b) <= combine_ratios(a, b, 4.0) <= 2**0.25 * max(a, b) + 1e-12
        assert combine_ratios(a, b, math.inf) == max(a, b)
        assert combine_ratios(a, b, 0.0) == max(a, b)
    # the odds r^4 of the two features add
    assert combine_ratios(1.0, 1.0, 4.0) ** 4 == pytest.approx(2.0)
    assert combine_ratios(-3.0, 2.0, 4.0) == 2.0
    assert math.isnan(combine_ratios(math.nan, 1.0, 4.0))


def feed(det, ts, values) -> list[float]:
    out = []
    for t, v in zip(ts, values, strict=True):
        out.append(det.score_one(float(t), float(v)))
        det.learn_one(float(t), float(v))
    return out


def test_default_detector_damps_repeats_of_its_own_raw_scores() -> None:
    """The detector's scores are its undamped scores put through the slow twin."""
    rng = np.random.default_rng(11)
    values = rng.normal(30, 2, 3000)
    values[1200:1230] += 15  # an event with many alert-level rows
    values[2000::97] += 12  # recurring spikes
    ts = T0 + STEP * np.arange(3000)
    raw = feed(SpikeLevelDetector(repeat_window=0), ts, values)
    got = feed(SpikeLevelDetector(), ts, values)
    assert got == slow_repeat_filter(raw, 60, 0.5)
    assert sum(g < r for g, r in zip(got, raw, strict=True)) > 10  # damping did happen


def test_score_one_does_not_change_what_is_learned() -> None:
    rng = np.random.default_rng(12)
    values = rng.normal(5, 1, 1200)
    values[900] = 40
    ts = T0 + STEP * np.arange(1200)
    plain = feed(SpikeLevelDetector(), ts, values)
    det = SpikeLevelDetector()
    probed = []
    for t, v in zip(ts, values, strict=True):
        det.score_one(float(t), 1e9)  # an extra probe with another value
        probed.append(det.score_one(float(t), float(v)))
        det.learn_one(float(t), float(v))
    assert probed == plain
