"""The streaming wrapper of the consensus ensemble (``classic`` / ``ensemble``)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from skyline.analysis.algorithms.classic_stream import EnsembleStreamDetector, votes_in_favour
from skyline.analysis.algorithms.ensemble import run_ensemble
from skyline.analysis.algorithms.streaming import DETECTORS, NEUTRAL_SCORE, make_detector

STEP = 300.0
T0 = 1_420_070_400.0


def feed(det, timestamps, values) -> list[float]:
    out = []
    for t, v in zip(timestamps, values, strict=True):
        out.append(det.score_one(float(t), float(v)))
        det.learn_one(float(t), float(v))
    return out


def test_registered() -> None:
    assert {"classic", "ensemble"} <= set(DETECTORS)
    assert make_detector("classic").mode == "classic"
    assert make_detector("ensemble").mode == "default"


@pytest.mark.parametrize("mode", ["classic", "default"])
def test_verdicts_equal_run_ensemble_on_the_same_window(mode: str) -> None:
    rng = np.random.default_rng(7)
    window = 150
    for trial in range(3):
        n = 400
        ts = T0 + STEP * np.arange(n)
        values = rng.normal(100, 5, n) + 10 * np.sin(np.arange(n) / 20)
        values[rng.integers(120, n, 4)] += rng.choice([-60, 60], 4)
        det = EnsembleStreamDetector(mode, window=window)
        for i in range(n):
            t, v = float(ts[i]), float(values[i])
            if i >= 100 and i % 7 == trial:
                lo = max(0, i - window + 1)
                wt, wv = ts[lo : i + 1].astype(np.int64), values[lo : i + 1]
                full = int(wt[-1] - wt[0]) + 1
                expected = run_ensemble((wt, wv), now=t, mode=mode, full_duration=max(full, 3600))
                got = det.verdict(t, v)
                assert got.anomalous == expected.anomalous
                assert got.triggered == expected.triggered
                assert got.votes == expected.votes
                every = run_ensemble(
                    (wt, wv), now=t, mode=mode, early_exit=False, full_duration=max(full, 3600)
                )
                score = det.score_one(t, v)
                assert score == votes_in_favour(every, mode) / 9
                assert (score >= 6 / 9) == bool(expected.anomalous)
            det.learn_one(t, v)


def test_neutral_until_min_length_and_in_range() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(10, 1, 300)
    values[250] = 80
    scores = feed(make_detector("classic"), T0 + STEP * np.arange(300), values)
    assert scores[:99] == [NEUTRAL_SCORE] * 99
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores[250] >= 6 / 9  # a 70-sigma spike convinces the consensus


def test_hostile_input() -> None:
    rng = np.random.default_rng(5)
    cases = [
        (T0 + STEP * np.arange(250), np.full(250, 3.0)),  # constant: Boring -> neutral
        (T0 + STEP * rng.integers(0, 80, 250), rng.normal(0, 1, 250)),  # dupes, unsorted
        (T0 + STEP * np.arange(250), rng.choice([1e308, -1e308, 0.0, np.nan, np.inf], 250)),
        (np.full(250, T0), rng.normal(0, 1, 250)),
    ]
    for ts, values in cases:
        for name in ("classic", "ensemble"):
            det = make_detector(name)
            scores = feed(det, ts, values)
            assert all(isinstance(s, float) and 0.0 <= s <= 1.0 for s in scores)
            assert det.score_one(math.nan, 1.0) == NEUTRAL_SCORE
            assert det.score_one(T0, math.inf) == NEUTRAL_SCORE
    assert max(feed(make_detector("classic"), *cases[0])) == NEUTRAL_SCORE


def test_window_is_bounded() -> None:
    det = EnsembleStreamDetector("default", window=120)
    ts = T0 + STEP * np.arange(1000)
    values = np.random.default_rng(1).normal(0, 1, 1000)
    feed(det, ts, values)
    t, v = det._window_with(float(ts[-1] + STEP), 0.0)
    assert len(t) == len(v) == 120
    assert np.array_equal(v[:-1], values[-119:])
