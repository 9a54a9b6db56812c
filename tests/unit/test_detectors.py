"""The default streaming detector (one series at a time, through StreamAdapter): warm-up,
spikes, level shifts, seasonality, hostile input."""

from __future__ import annotations

import math

import numpy as np

from skyline.analysis.algorithms.streaming import DETECTORS, NEUTRAL_SCORE, Detector, make_detector

STEP = 300.0  # 5-minute data
T0 = 1_420_070_400.0  # 2015-01-01 00:00 UTC


def feed(det: Detector, timestamps, values) -> list[float]:
    scores = []
    for t, v in zip(timestamps, values, strict=True):
        scores.append(det.score_one(float(t), float(v)))
        det.learn_one(float(t), float(v))
    return scores


def test_registry() -> None:
    assert {"spike_level", "null", "classic", "ensemble"} <= set(DETECTORS)
    det = make_detector("spike_level")
    assert isinstance(det, Detector)
    assert make_detector("spike_level") is not det  # fresh state each time
    assert make_detector("null").score_one(0.0, 1e9) == 0.0


def test_neutral_during_warm_up() -> None:
    rng = np.random.default_rng(1)
    values = rng.normal(10, 1, 40)
    values[20] = 1e6
    scores = feed(make_detector("spike_level"), T0 + STEP * np.arange(40), values)
    assert scores == [NEUTRAL_SCORE] * 40


def test_large_spike_after_stable_period_scores_high() -> None:
    rng = np.random.default_rng(2)
    values = rng.normal(50, 2, 1500)
    values[1400] = 90  # 20 sigma
    scores = feed(make_detector("spike_level"), T0 + STEP * np.arange(1500), values)
    assert scores[1400] > 0.9
    assert max(scores[1000:1400]) < 0.5
    assert max(scores[1000:1400]) < scores[1400]


def test_repeated_daily_peak_scores_low_after_several_days() -> None:
    rng = np.random.default_rng(3)
    per_day = int(86400 / STEP)
    n = per_day * 8
    ts = T0 + STEP * np.arange(n)
    values = rng.normal(10, 0.5, n)
    peak = (np.arange(n) % per_day >= 144) & (np.arange(n) % per_day < 150)  # noon, 30 min
    values[peak] += 40
    scores = np.array(feed(make_detector("spike_level"), ts, values))
    first_day_peak = scores[per_day + 144]  # day 0's peak falls in the warm-up
    last_day_peaks = scores[per_day * 7 + 144 : per_day * 7 + 150]
    assert first_day_peak > 0.9
    assert last_day_peaks.max() < 0.5


def test_hostile_input_never_raises_and_stays_in_range() -> None:
    rng = np.random.default_rng(4)
    cases = {
        "constant": (T0 + STEP * np.arange(500), np.full(500, 7.0)),
        "nan_inf": (
            T0 + STEP * np.arange(300),
            np.where(rng.random(300) < 0.2, np.nan, rng.normal(0, 1, 300)),
        ),
        "huge": (T0 + STEP * np.arange(300), rng.choice([1e308, -1e308, 0.0, 1e-308], 300)),
        "unsorted_dupes": (T0 + STEP * rng.integers(0, 50, 400), rng.normal(0, 1, 400)),
        "same_ts": (np.full(200, T0), rng.normal(0, 1, 200)),
    }
    cases["nan_inf"][1][::37] = np.inf
    cases["nan_inf"][1][::41] = -np.inf
    for name, (ts, values) in cases.items():
        det = make_detector("spike_level")
        scores = feed(det, ts, values)
        assert all(isinstance(s, float) and 0.0 <= s <= 1.0 for s in scores), name
        assert det.score_one(math.nan, 1.0) == NEUTRAL_SCORE
        assert det.score_one(T0, math.inf) == NEUTRAL_SCORE
    constant = feed(make_detector("spike_level"), *cases["constant"])
    assert max(constant) == 0.0


def test_sustained_level_shift_scores_high_and_fades() -> None:
    rng = np.random.default_rng(6)
    values = rng.normal(20, 1, 2000)
    values[1500:] += 6  # a 6-sigma shift that stays
    scores = np.array(feed(make_detector("spike_level"), T0 + STEP * np.arange(2000), values))
    assert scores[1500:1510].max() > 0.6
    assert scores[1500:1510].max() > scores[1000:1500].max() + 0.1
    assert scores[1800:].max() < 0.5  # the new level is learned


def test_all_detectors_survive_hostile_input() -> None:
    rng = np.random.default_rng(8)
    ts = T0 + STEP * rng.integers(0, 300, 600)  # duplicate and unsorted timestamps
    values = rng.choice([1e308, -1e308, np.nan, np.inf, 0.0, 1.0], 600)
    for name in ("spike_level", "null"):
        scores = feed(make_detector(name), ts, values)
        assert all(isinstance(s, float) and 0.0 <= s <= 1.0 for s in scores), name
