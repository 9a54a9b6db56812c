"""NAB scoring against small hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from skyline.analysis.nab import scoring

STD = scoring.PROFILES["standard"]
N = 100  # rows; probation = 15
WINDOW = (40.0 * 60, 49.0 * 60)  # rows 40..49 (timestamps are row * 60 s)


def sig(x: float) -> float:
    return 2.0 / (1.0 + math.exp(5.0 * x)) - 1.0


def case(detect_rows: list[int], windows=(WINDOW,), name="c/f.csv", scores=None):
    ts = np.arange(N) * 60.0
    if scores is None:
        scores = np.zeros(N)
        scores[detect_rows] = 1.0
    return scoring.prepare(name, ts, np.asarray(scores, dtype=float), list(windows))


def raw(c, threshold=0.5, profile=STD) -> float:
    return scoring.score_file(c, threshold, profile)["raw"]


def test_profiles_as_published():
    assert scoring.PROFILES == {
        "standard": {"tp": 1.0, "fp": 0.11, "fn": 1.0},
        "reward_low_FP_rate": {"tp": 1.0, "fp": 0.22, "fn": 1.0},
        "reward_low_FN_rate": {"tp": 1.0, "fp": 0.11, "fn": 2.0},
    }


def test_detection_at_window_start_earns_tp_weight():
    assert raw(case([40])) == pytest.approx(1.0)


def test_later_detection_in_window_earns_less():
    # row 45: x = -(49 - 45 + 1) / 10 = -0.5
    assert raw(case([45])) == pytest.approx(sig(-0.5) / sig(-1.0))
    assert raw(case([49])) < raw(case([45])) < raw(case([40]))


def test_only_first_detection_in_window_counts():
    assert raw(case([45, 40 + 9, 47])) == pytest.approx(sig(-0.5) / sig(-1.0))
    assert raw(case([40, 41, 42])) == pytest.approx(1.0)


def test_missed_window_costs_fn_weight():
    assert raw(case([])) == pytest.approx(-1.0)
    low_fn = scoring.PROFILES["reward_low_FN_rate"]
    assert raw(case([]), profile=low_fn) == pytest.approx(-2.0)


def test_false_positive_before_any_window_costs_full_fp_weight():
    assert raw(case([20, 40])) == pytest.approx(1.0 - 0.11)
    low_fp = scoring.PROFILES["reward_low_FP_rate"]
    assert raw(case([20, 40]), profile=low_fp) == pytest.approx(1.0 - 0.22)
    assert raw(case([20, 30], windows=())) == pytest.approx(-0.22)


def test_false_positive_after_window_follows_sigmoid():
    # row 59 is one window width after the window's right edge (row 49)
    assert raw(case([40, 59])) == pytest.approx(1.0 + 0.11 * sig(1.0))
    # three or more widths later: the full cost
    assert raw(case([40, 99])) == pytest.approx(1.0 - 0.11, abs=1e-6)
    # just after the window: almost free
    assert raw(case([40, 50])) > 1.0 - 0.11 * 0.3


def test_probationary_rows_are_ignored():
    assert raw(case([3, 10, 40])) == pytest.approx(1.0)


def test_normalisation_null_is_0_and_perfect_is_100():
    for profile in scoring.PROFILES.values():
        assert scoring.normalise(-profile["fn"] * 3, 3, profile) == pytest.approx(0.0)
        assert scoring.normalise(profile["tp"] * 3, 3, profile) == pytest.approx(100.0)
    null = scoring.score_corpus([case([]), case([], name="c/g.csv")])
    perfect = scoring.score_corpus([case([40]), case([40], name="c/g.csv")])
    for name in scoring.PROFILES:
        assert null["profiles"][name]["score"] == pytest.approx(0.0)
        assert null["profiles"][name]["threshold"] == scoring.NEVER
        assert perfect["profiles"][name]["score"] == pytest.approx(100.0)


def test_threshold_optimisation_picks_the_best_threshold():
    scores = np.zeros(N)
    scores[20], scores[25], scores[45] = 0.8, 0.7, 0.6  # two FPs score above the TP
    c = case([], scores=scores)
    # 1.1: -1; 0.8: -1.11; 0.7: -1.22; 0.6: tp(-0.5) - 0.22; 0: same (nothing new)
    threshold, best = scoring.optimise_threshold([c], STD)
    assert threshold == pytest.approx(0.6)
    assert best == pytest.approx(sig(-0.5) / sig(-1.0) - 0.22)
    # with a costlier FP, never detecting is better
    costly = {"tp": 1.0, "fp": 1.5, "fn": 1.0}
    assert scoring.optimise_threshold([c], costly) == (scoring.NEVER, -1.0)


def test_threshold_ties_go_to_the_higher_threshold():
    scores = np.zeros(N)
    scores[40], scores[41] = 0.9, 0.5  # 0.5 adds nothing beyond 0.9
    threshold, best = scoring.optimise_threshold([case([], scores=scores)], STD)
    assert threshold == pytest.approx(0.9)
    assert best == pytest.approx(1.0)


def test_threshold_is_shared_across_files():
    a = np.zeros(N)
    a[40] = 0.9
    b = np.zeros(N)
    b[20], b[40] = 0.95, 0.3
    ca, cb = case([], scores=a), case([], scores=b, name="c/g.csv")
    report = scoring.score_corpus([ca, cb])
    std = report["profiles"]["standard"]
    # at 0.3 both windows are caught at their start and b pays one FP
    assert std["threshold"] == pytest.approx(0.3)
    assert std["raw"] == pytest.approx(2.0 - 0.11)
    assert std["files"]["c/g.csv"] == {
        "raw": pytest.approx(0.89),
        "tp": 1,
        "fn": 0,
        "fp": 1,
        "windows": 1,
    }
    assert report["windows"] == 2
