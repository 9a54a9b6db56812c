"""The consensus ensemble: early exit, decision rules, skips, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from skyline.analysis.algorithms import (
    ALGORITHMS,
    CLASSIC_ORDER,
    Skip,
    check_skip,
    decide,
    prepare_arrays,
    run_ensemble,
    stop_early,
)
from skyline.store.timeseries import Series

NOW = 1_700_000_000


def fixture_series() -> Series:
    """The reference's fixture: 86,401 points one per second ending at now, all 1
    except the last = 1000."""
    t = np.arange(NOW - 86400, NOW + 1, dtype=np.int64)
    v = np.ones(len(t))
    v[-1] = 1000.0
    return Series(t, v)


def noisy(n=500, seed=0, spike=0.0) -> Series:
    rng = np.random.default_rng(seed)
    v = 10 + rng.standard_normal(n)
    v[-1] += spike
    return Series(NOW - 60 * np.arange(n - 1, -1, -1, dtype=np.int64), v)


@pytest.fixture
def fake_votes(monkeypatch):
    """Replace the kernels by fixed votes (1 True, 0 False, -1 None) per algorithm."""

    def install(votes: dict[str, int]) -> None:
        for name, vote in votes.items():

            def kernel(block, ctx, vote=vote):
                return np.full(block.m, vote, np.int8), np.full(block.m, float(vote))

            monkeypatch.setattr(ALGORITHMS.get(name), "kernel", kernel)

    return install


@pytest.mark.parametrize("mode", ["classic", "default"])
def test_reference_fixture(mode):
    v = run_ensemble(fixture_series(), now=NOW, mode=mode)
    assert v.anomalous is True
    assert v.skip is None
    assert v.value == 1000.0 and v.timestamp == NOW
    assert v.run == CLASSIC_ORDER
    assert set(v.triggered) == set(CLASSIC_ORDER) - {"median_absolute_deviation", "ks_test"}
    assert len(v.triggered) == 7
    assert v.scores["histogram_bins"] >= 1.0
    assert v.votes["ks_test"] is False


def test_early_exit_after_four_false(fake_votes):
    fake_votes({name: 0 for name in CLASSIC_ORDER})
    v = run_ensemble(noisy(), now=NOW, mode="classic")
    assert v.run == CLASSIC_ORDER[:4]
    assert v.anomalous is False
    full = run_ensemble(noisy(), now=NOW, mode="classic", early_exit=False)
    assert full.run == CLASSIC_ORDER


def test_early_exit_counts_only_false_in_classic(fake_votes):
    fake_votes({"histogram_bins": -1, "first_hour_average": 0, "stddev_from_average": -1})
    fake_votes({n: 0 for n in CLASSIC_ORDER[3:]})
    classic_v = run_ensemble(noisy(), now=NOW, mode="classic")
    assert classic_v.run == CLASSIC_ORDER[:6]  # False at positions 2, 4, 5, 6
    default_v = run_ensemble(noisy(), now=NOW, mode="default")
    assert default_v.run == CLASSIC_ORDER[:4]  # None counts against in default mode


def test_none_votes_count_towards_anomalous_only_in_classic(fake_votes):
    # 3 True, 3 None, 3 False: classic threshold 9 - 6 = 3 Falses -> anomalous
    votes = dict(zip(CLASSIC_ORDER, [1, 1, 1, -1, -1, -1, 0, 0, 0], strict=True))
    fake_votes(votes)
    assert run_ensemble(noisy(), now=NOW, mode="classic").anomalous is True
    v = run_ensemble(noisy(), now=NOW, mode="default")
    assert v.anomalous is False
    assert v.triggered == CLASSIC_ORDER[:3]


def test_all_none_is_not_anomalous(fake_votes):
    fake_votes({name: -1 for name in CLASSIC_ORDER})
    for mode in ("classic", "default"):
        v = run_ensemble(noisy(), now=NOW, mode=mode, consensus=1)
        assert v.anomalous is False
        assert all(x is None for x in v.votes.values())


def test_decide_and_stop_rules():
    assert decide([True] * 6 + [False] * 3, 9, 6, "classic") is True
    assert decide([True] * 5 + [False] * 4, 9, 6, "classic") is False
    assert decide([None] * 9, 9, 6, "classic") is False
    assert decide([None] * 8 + [False], 9, 6, "classic") is True  # the None quirk
    assert decide([None] * 8 + [True], 9, 6, "classic") is True
    assert decide([None] * 8 + [True], 9, 6, "default") is False
    assert decide([True] * 6, 9, 6, "default") is True
    assert decide([False, False, False, False], 9, 6, "classic") is False  # early exit
    assert not stop_early(3, 5, 9, 6, "classic")
    assert stop_early(4, 0, 9, 6, "classic")
    assert stop_early(2, 2, 9, 6, "default")
    assert stop_early(1, 0, 9, 9, "classic")  # consensus 9: one False decides


def test_consensus_one_and_nine():
    spike = noisy(spike=50)
    assert run_ensemble(spike, now=NOW, consensus=1).anomalous is True
    quiet = run_ensemble(noisy(), now=NOW, consensus=9, mode="classic")
    assert quiet.anomalous is False and len(quiet.run) == 1 + quiet.triggered.__len__()


def test_skips():
    assert check_skip(Series.empty(), NOW) is Skip.EmptyTimeseries
    assert check_skip(noisy(50), NOW) is Skip.TooShort
    assert check_skip(noisy(50), NOW, min_length=10) is None
    assert check_skip(noisy(), NOW + 501) is Skip.Stale
    assert check_skip(noisy(), NOW + 500) is None
    boring = noisy()
    boring.values[-100:] = 3.0
    assert check_skip(boring, NOW) is Skip.Boring
    boring.values[-101] = 3.0
    boring.values[-100] = 4.0
    assert check_skip(boring, NOW) is None
    # the reference tests == BOREDOM_SET_SIZE; default mode tests <=
    assert check_skip(boring, NOW, boredom_set_size=2, mode="classic") is Skip.Boring
    boring.values[-100] = 3.0
    assert check_skip(boring, NOW, boredom_set_size=2, mode="classic") is None
    assert check_skip(boring, NOW, boredom_set_size=2, mode="default") is Skip.Boring
    for skip, series, now in [
        ("EmptyTimeseries", Series.empty(), NOW),
        ("TooShort", noisy(99), NOW),
        ("Stale", noisy(), NOW + 1000),
        ("Boring", boring, NOW),
    ]:
        v = run_ensemble(series, now=now)
        assert v.skip == skip and v.anomalous is None and v.run == ()


BAD_INPUTS = {
    "empty": ([], []),
    "one_point": ([NOW], [1.0]),
    "constant": (list(range(NOW - 59900, NOW + 1, 100)), [5.0] * 600),
    "all_nan": (list(range(NOW - 599, NOW + 1)), [float("nan")] * 600),
    "unsorted": (list(range(NOW, NOW - 600, -1)), list(np.random.default_rng(1).random(600))),
    "duplicates": ([NOW - 300 + i // 2 for i in range(600)], [float(i) for i in range(600)]),
    "huge": (list(range(NOW - 599, NOW + 1)), [1e308, -1e308] * 300),
    "huge_spike": (list(range(NOW - 599, NOW + 1)), [1.0] * 599 + [1e308]),
    "inf_mixed": (list(range(NOW - 599, NOW + 1)), [1.0, float("inf")] * 300),
    "tiny": (list(range(NOW - 599, NOW + 1)), [5e-324, 0.0] * 300),
    "float_timestamps": ([NOW - 599.5 + i for i in range(600)], [float(i % 7) for i in range(600)]),
}


@pytest.mark.parametrize("label", sorted(BAD_INPUTS))
@pytest.mark.parametrize("mode", ["classic", "default"])
def test_bad_input_never_raises(label, mode):
    ts, vals = BAD_INPUTS[label]
    v = run_ensemble((ts, vals), now=NOW, mode=mode)
    assert v.skip is not None or v.anomalous in (True, False)
    if label in ("empty", "all_nan"):
        assert v.skip == "EmptyTimeseries"
    if label == "one_point":
        assert v.skip == "TooShort"
    if label == "constant":
        assert v.skip == "Boring"
    if label in ("huge", "inf_mixed") and mode == "default":
        assert v.anomalous in (False, None)
    prepared = run_ensemble(prepare_arrays(ts, vals), now=NOW, mode=mode)
    assert prepared == v


def test_bad_arguments_raise_value_error():
    with pytest.raises(ValueError):
        run_ensemble(noisy(), now=NOW, algorithms=["nope"])
    with pytest.raises(ValueError):
        run_ensemble(noisy(), now=NOW, consensus=0)
    with pytest.raises(ValueError):
        run_ensemble(noisy(), now=NOW, mode="fancy")


def test_algorithm_error_is_a_none_vote(fake_votes, monkeypatch):
    def boom(block, ctx):
        raise RuntimeError("broken")

    monkeypatch.setattr(ALGORITHMS.get("grubbs"), "kernel", boom)
    v = run_ensemble(noisy(spike=100), now=NOW, mode="classic", early_exit=False)
    assert v.votes["grubbs"] is None and v.scores["grubbs"] == 0.0
