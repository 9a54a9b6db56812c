"""Batch verdicts equal the per-series verdicts, row by row."""

from __future__ import annotations

import numpy as np
import pytest

from skyline.analysis.algorithms import (
    CLASSIC_ORDER,
    ETSY_ORDER,
    run_ensemble,
    run_ensemble_batch,
    run_ensemble_many,
)

NOW = 1_700_000_000


def make_rows(m: int, n: int, seed: int, step: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Seeded rows of several shapes; about a fifth carry a spike at the end, some are
    boring or stale, timestamps jitter per row."""
    rng = np.random.default_rng(seed)
    t = (NOW - rng.integers(0, step, m))[:, None] - step * np.arange(n - 1, -1, -1)[None, :]
    level = rng.lognormal(2, 2, (m, 1))
    sd = level * rng.uniform(0.01, 0.3, (m, 1))
    kind = rng.integers(0, 6, m)
    v = level + sd * rng.standard_normal((m, n))
    x = np.arange(n)[None, :]
    v = np.where((kind == 1)[:, None], v + level * np.sin(2 * np.pi * x * step / 86400), v)
    v = np.where((kind == 2)[:, None], v + sd * x / 20, v)
    v = np.where((kind == 3)[:, None], rng.poisson(3, (m, n)).astype(float), v)
    v = np.where((kind == 4)[:, None], level + np.cumsum(sd * rng.standard_normal((m, n)), 1), v)
    step_rows = kind == 5
    v[step_rows, n // 2 :] += 5 * sd[step_rows]
    spiked = rng.random(m) < 0.2
    width = rng.integers(1, 4, m)
    for i in np.flatnonzero(spiked):
        v[i, -width[i] :] += rng.choice([-1, 1]) * rng.uniform(4, 40) * (sd[i, 0] + 1)
    v[rng.random(m) < 0.03, -120:] = 7.0  # boring
    t[rng.random(m) < 0.03] -= 3600  # stale
    return t.astype(np.int64), v


def assert_same(res, t, v, **opts):
    anomalies = 0
    for i in range(len(v)):
        expected = run_ensemble((t[i], v[i]), **opts)
        got = res.verdict(i)
        assert got.skip == expected.skip, i
        assert got.anomalous == expected.anomalous, i
        assert got.run == expected.run, i
        assert got.triggered == expected.triggered, i
        assert got.votes == expected.votes, i
        assert got.scores == pytest.approx(expected.scores, rel=1e-12, abs=1e-12), i
        assert got.value == expected.value and got.timestamp == expected.timestamp, i
        anomalies += bool(expected.anomalous)
    return anomalies


@pytest.mark.parametrize("mode", ["classic", "default"])
@pytest.mark.parametrize("consensus", [2, 6, 7])
def test_batch_equals_per_series(mode, consensus):
    t, v = make_rows(320, 400, seed=consensus)
    opts = dict(now=NOW, mode=mode, consensus=consensus, full_duration=400 * 60)
    res = run_ensemble_batch(t, v, chunk_rows=100, **opts)
    anomalies = assert_same(res, t, v, **opts)
    assert anomalies > 0
    assert anomalies < len(v)
    assert res.verdicts() == [res.verdict(i) for i in range(len(res))]  # the bulk builder
    assert res.verdicts([5, 0, 5]) == [res.verdict(5), res.verdict(0), res.verdict(5)]


@pytest.mark.parametrize("mode", ["classic", "default"])
def test_batch_on_chosen_rows_equals_the_batch_on_those_rows(mode):
    t, v = make_rows(120, 300, seed=9)
    rows = np.array([3, 4, 5, 6, 90, 2, 2, 119, 40, 41])  # runs, repeats, out of order
    opts = dict(now=NOW, mode=mode, consensus=6, full_duration=300 * 60)
    got = run_ensemble_batch(t, v, rows=rows, chunk_rows=4, **opts)
    want = run_ensemble_batch(t[rows], v[rows], **opts)
    assert got.verdicts() == want.verdicts()
    assert_same(got, t[rows], v[rows], **opts)


@pytest.mark.parametrize("mode", ["classic", "default"])
def test_batch_equals_per_series_dense_data_with_ks(mode):
    """10 s steps: ks_test has enough points and runs (and sometimes fires)."""
    t, v = make_rows(60, 720, seed=11, step=10)
    v[::4, -60:] += 3 * v[::4].std(axis=1, keepdims=True)
    opts = dict(now=NOW, mode=mode, consensus=4, algorithms=ETSY_ORDER, full_duration=7200)
    res = run_ensemble_batch(t, v, **opts)
    assert_same(res, t, v, **opts)
    assert (res.votes[:, ETSY_ORDER.index("ks_test")] == 1).any()


@pytest.mark.parametrize("early_exit", [True, False])
def test_batch_without_early_exit_and_short_rows(early_exit):
    t, v = make_rows(40, 150, seed=3)
    opts = dict(now=NOW, mode="classic", early_exit=early_exit, min_length=100)
    assert_same(run_ensemble_batch(t, v, **opts), t, v, **opts)
    short = run_ensemble_batch(t[:, -50:], v[:, -50:], **opts)
    assert set(short.skip) == {"TooShort"}


def test_batch_hands_bad_rows_to_per_series():
    t, v = make_rows(30, 200, seed=4)
    t[3] = t[3][::-1]  # unsorted
    t[5, 10] = t[5, 9]  # duplicate timestamp
    v[7, 20] = np.nan
    v[9, :] = np.nan
    v[11, -1] = np.inf
    opts = dict(now=NOW, mode="default", consensus=5)
    res = run_ensemble_batch(t, v, **opts)
    assert_same(res, t, v, **opts)
    assert res.skip[9] == "EmptyTimeseries"


def test_run_ensemble_many_mixed_lengths():
    t, v = make_rows(40, 300, seed=5)
    series = [(t[i], v[i]) for i in range(30)] + [(t[i, -200:], v[i, -200:]) for i in range(30, 40)]
    series.append(([], []))
    got = run_ensemble_many(series, now=NOW, mode="classic", algorithms=CLASSIC_ORDER)
    assert got == [run_ensemble(s, now=NOW, mode="classic") for s in series]


def test_empty_batch():
    res = run_ensemble_batch(np.empty((0, 10), np.int64), np.empty((0, 10)), now=NOW)
    assert len(res) == 0 and res.verdicts() == []
    res = run_ensemble_batch(np.empty((3, 0), np.int64), np.empty((3, 0)), now=NOW)
    assert [x.skip for x in res.verdicts()] == ["EmptyTimeseries"] * 3
