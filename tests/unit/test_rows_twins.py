"""The compiled row kernels (``classic/_rows.py``) against their numpy twins.

The twins below are the numpy kernels the compiled loop replaced: whole-array
expressions, easy to check line by line against docs/algorithms.md.  Votes must be
equal and scores equal within 1e-9 (the compiled loop sums in four lanes, numpy
pairwise), on random rows of several shapes and on hand-picked ones.  The prefilter
(``first_votes``) must give what the algorithms give one by one, with the ensemble's
early exit; ``settle_early`` must settle rows exactly as ``run_ensemble`` judges them.
``tests/unit/test_algorithms_twins.py`` checks the same kernels against exact
rational arithmetic.
"""

from __future__ import annotations

import numpy as np
import pytest

from skyline.analysis.algorithms import EnsembleOptions, run_ensemble, settle_early
from skyline.analysis.algorithms.classic import FALSE, NONE, TRUE, Context
from skyline.analysis.algorithms.classic._rows import CODES, first_votes, leading_codes, run_rows
from skyline.analysis.algorithms.classic._shared import judge, sigma_test
from skyline.analysis.algorithms.classic.grubbs import grubbs_critical
from skyline.analysis.algorithms.prepare import Block, _std, row_search

NOW = 1_700_000_000
MODES = ("classic", "default")


# The numpy twins --------------------------------------------------------------------------
def np_histogram_bins(b: Block, ctx: Context):
    v, t = b.v, b.tail
    first, last = v.min(axis=1), v.max(axis=1)
    const = first == last
    first = np.where(const, first - 0.5, first)
    last = np.where(const, last + 0.5, last)
    step = (last - first) / 15
    edges = np.arange(16)[None, :] * step[:, None] + first[:, None]
    edges[:, 15] = last
    if ctx.classic:
        k = (edges[:, 1:] <= t[:, None]).sum(axis=1)
        at_min = t <= edges[:, 0]
        matched = at_min | ((k >= 1) & (k <= 14))
        k = np.where(at_min, 0, np.clip(k, 0, 14))
    else:
        k = (edges[:, 1:15] <= t[:, None]).sum(axis=1)
        matched = np.ones(len(k), bool)
    rows = np.arange(len(k))
    lower = edges[rows, k]
    upper = edges[rows, k + 1]
    upper = np.where(k == 14, np.nextafter(upper, np.inf), upper)
    count = ((v >= lower[:, None]) & (v < upper[:, None])).sum(axis=1)
    exceeds = matched & (count <= 20)
    valid = np.isfinite(edges).all(axis=1) & np.isfinite(t)
    scores = np.where(matched, 21.0 / (count + 1.0), 0.0)
    return judge(exceeds, valid, ctx), scores


def np_first_hour_average(b: Block, ctx: Context):
    start = b.t[:, -1] - ctx.full_duration
    lo = row_search(b.t, start, "right")
    hi = row_search(b.t, start + 3600, "left")
    mean, std = np.full(b.m, np.nan), np.full(b.m, np.nan)
    for i in range(b.m):
        a, z = int(lo[i]), int(hi[i])
        if z > a:
            x = b.d[i : i + 1, a:z]
            mu = x.mean(axis=1)
            mean[i], std[i] = mu[0], _std(x, mu, 1)[0]
    return sigma_test(b.tail_d - mean, std, ctx)


def np_stddev_from_average(b: Block, ctx: Context):
    return sigma_test(b.tail_d - b.mean_d, b.std_d, ctx)


def np_grubbs(b: Block, ctx: Context):
    std = b.std_d
    g = grubbs_critical(b.n)
    z = (b.tail_d - b.mean_d) / std
    if not ctx.classic:
        z = np.abs(z)
    zero = std == 0
    exceeds = (z > g) & ~zero
    scores = np.where(zero | ~np.isfinite(z), 0.0, z / g)
    scores = np.where(np.isnan(scores), 0.0, scores)
    valid = zero | (np.isfinite(z) & np.isfinite(g))
    return judge(exceeds, valid, ctx), scores


TWINS = {
    "histogram_bins": np_histogram_bins,
    "first_hour_average": np_first_hour_average,
    "stddev_from_average": np_stddev_from_average,
    "grubbs": np_grubbs,
}


# Inputs -----------------------------------------------------------------------------------
def random_rows(seed: int, m: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = NOW - 60 * np.arange(n - 1, -1, -1)[None, :] - rng.integers(0, 60, (m, 1))
    kind = rng.integers(0, 6, m)
    v = rng.standard_normal((m, n)) * rng.lognormal(0, 2, (m, 1))
    v[kind == 1] = np.round(v[kind == 1])  # few distinct values
    v[kind == 2] = np.cumsum(v[kind == 2], axis=1)  # random walk
    v[kind == 3] += 1e12  # a huge offset
    v[kind == 4] = rng.poisson(0.3, (int((kind == 4).sum()), n))  # mostly zeros
    spiked = rng.random(m) < 0.3
    v[spiked, -rng.integers(1, 4) :] += rng.choice([-1, 1]) * 50 * (np.abs(v[spiked]).max() + 1)
    gaps = rng.random(m) < 0.2  # irregular: a hole in the first hour or later
    t[gaps, : n // 3] -= rng.integers(1, 7200)
    return t.astype(np.int64), v


def hand_picked(n: int) -> list[np.ndarray]:
    x = np.arange(n, dtype=np.float64)
    spike = np.zeros(n)
    spike[-1] = 1e6
    half = np.where(x < n / 2, 0.0, 1.0)
    return [
        np.zeros(n),  # constant: the zero range widened by 0.5
        np.full(n, 7.25),
        np.full(n, -0.0),
        x,  # a line: the tail at the maximum, in the closed last bin
        -x,  # the tail at the minimum: classic's bin 0 quirk
        spike,
        -spike,
        half,
        np.where(x % 2 == 0, 1.0, -1.0),
        np.full(n, 1.7e308) * np.where(x % 3 == 0, 1.0, -1.0),  # the range overflows to inf
        np.where(x == n // 2, np.nan, x),  # a NaN (the analyzer never passes one)
        1e15 + np.where(x % 5 == 0, 1.0, 0.0),
    ]


def assert_twins(t: np.ndarray, v: np.ndarray, full_duration: int = 86400) -> None:
    for mode in MODES:
        ctx = Context(mode=mode, full_duration=full_duration)
        for name, twin in TWINS.items():
            with np.errstate(all="ignore"):
                want_votes, want_scores = twin(Block(t, v), ctx)
            votes, scores = run_rows(name, t, v, ctx.classic, full_duration)
            assert votes.tolist() == want_votes.tolist(), (name, mode)
            np.testing.assert_allclose(scores, want_scores, rtol=1e-9, atol=1e-12, err_msg=name)


# Tests ------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 61, 100, 1441])
def test_row_kernels_equal_their_numpy_twins_on_random_rows(seed, n):
    t, v = random_rows(seed, 60, n)
    assert_twins(t, v)
    assert_twins(t, v, full_duration=60 * n // 2)  # the first hour inside the window


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 8, 9, 61, 240])
def test_row_kernels_equal_their_numpy_twins_on_hand_picked_rows(n):
    v = np.stack(hand_picked(n))
    t = np.tile(NOW - 60 * np.arange(n - 1, -1, -1, dtype=np.int64), (len(v), 1))
    assert_twins(t, v, full_duration=60 * n)
    assert_twins(t, v, full_duration=3600)  # the first hour ends at the last point


def test_row_kernels_vote_none_only_in_default_mode():
    n = 240
    v = np.stack(hand_picked(n))
    t = np.tile(NOW - 60 * np.arange(n - 1, -1, -1, dtype=np.int64), (len(v), 1))
    for name in CODES:
        classic, _ = run_rows(name, t, v, True, 86400)
        default, _ = run_rows(name, t, v, False, 86400)
        assert NONE not in classic.tolist(), name
        assert set(default.tolist()) <= {TRUE, FALSE, NONE}
    inf_row = len(v) - 3  # the range overflows: histogram_bins cannot judge it
    assert run_rows("histogram_bins", t, v, False, 86400)[0][inf_row] == NONE
    assert run_rows("histogram_bins", t, v, True, 86400)[0][inf_row] in (TRUE, FALSE)


def loop_twin(t, v, rows, names, stop_at, mode):
    """``first_votes`` written as the ensemble's loop over the algorithms one by one."""
    votes = np.full((len(rows), len(names)), -2, np.int8)
    scores = np.full((len(rows), len(names)), np.nan)
    decided = np.zeros(len(rows), bool)
    for r, i in enumerate(rows):
        against = 0
        for j, name in enumerate(names):
            vote, score = run_rows(name, t[i : i + 1], v[i : i + 1], mode == "classic", 86400)
            votes[r, j], scores[r, j] = vote[0], score[0]
            against += vote[0] == FALSE or (vote[0] == NONE and mode != "classic")
            if against >= stop_at:
                decided[r] = True
                break
    return votes, scores, decided


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("stop_at", [0, 1, 3, 4, 5])
def test_first_votes_equal_the_algorithms_one_by_one(mode, stop_at):
    t, v = random_rows(7, 80, 300)
    v = np.concatenate([v, np.stack(hand_picked(300))])
    t = np.concatenate([t, t[: len(v) - len(t)]])
    rows = np.arange(len(v))[::-1][::2]  # read in place, out of order
    names = ("grubbs", "histogram_bins", "stddev_from_average", "first_hour_average")
    codes = leading_codes(names + ("ks_test", "grubbs"))
    assert codes.tolist() == [CODES[n] for n in names]
    got = first_votes(t, v, rows, codes, stop_at, mode == "classic", 86400)
    want = loop_twin(t, v, rows, names, stop_at, mode)
    assert got[0].tolist() == want[0].tolist()
    np.testing.assert_array_equal(got[1], want[1])  # one code path: bit-identical
    assert got[2].tolist() == want[2].tolist()
    if stop_at == 4:
        assert 0 < got[2].sum() < len(rows)


def test_leading_codes_stop_at_the_first_algorithm_without_a_row_kernel():
    assert leading_codes(("ks_test", "grubbs")).tolist() == []
    assert leading_codes(("grubbs", "grubbs", "histogram_bins")).tolist() == [CODES["grubbs"]]
    assert leading_codes(()).tolist() == []


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("consensus", [2, 6, 7, 9])
def test_settle_early_settles_rows_as_run_ensemble_judges_them(mode, consensus):
    t, v = random_rows(11, 200, 500)
    v[::17, -100:] = 3.0  # boring
    t[::23] -= 7200  # stale
    opts = EnsembleOptions(mode=mode, consensus=consensus, full_duration=500 * 60)
    rows = np.arange(len(v))[1::2]
    res, left = settle_early(t, v, rows, now=NOW, options=opts)
    settled = np.setdiff1d(np.arange(len(rows)), left)
    assert len(settled) > 0
    for r in settled.tolist():
        want = run_ensemble((t[rows[r]], v[rows[r]]), now=NOW, options=opts)
        got = res.verdict(r)
        assert (got.skip, got.anomalous, got.run, got.votes) == (
            want.skip, want.anomalous, want.run, want.votes)  # fmt: skip
        assert got.scores == want.scores  # the same compiled loop
    for r in left.tolist():  # those need more than the leading four
        want = run_ensemble((t[rows[r]], v[rows[r]]), now=NOW, options=opts)
        assert want.skip is None and len(want.run) > 4 or consensus > 6
