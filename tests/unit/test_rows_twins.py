"""The compiled row kernels (``classic/_rows.py``, run by ``classic/_fused.py``) against
their numpy twins.

The twins below are the numpy kernels the compiled loop replaced: whole-array
expressions, easy to check line by line against docs/algorithms.md.  Votes must be
equal and scores equal within 1e-9 (the compiled loop sums in four lanes, numpy
pairwise), on random rows of several shapes and on hand-picked ones.  The fused loop
(``ensemble_rows``) must give what the algorithms give one by one, with the ensemble's
early exit and ks_test's pause for scipy; ``settle_early`` must settle rows exactly as
``run_ensemble`` judges them.
``tests/unit/test_algorithms_twins.py`` checks the same kernels against exact
rational arithmetic.
"""

from __future__ import annotations

import numpy as np
import pytest

from skyline.analysis.algorithms import (
    CLASSIC_ORDER,
    EnsembleOptions,
    run_ensemble,
    run_ensemble_batch,
    settle_early,
)
from skyline.analysis.algorithms.classic import ALGORITHMS, FALSE, NONE, TRUE, Context
from skyline.analysis.algorithms.classic._fused import (
    CODES,
    ensemble_rows,
    leading_codes,
    row_kernel,
    run_rows,
)
from skyline.analysis.algorithms.classic._shared import judge, sigma_test
from skyline.analysis.algorithms.classic.grubbs import grubbs_critical
from skyline.analysis.algorithms.classic.ks_test import ks_two_windows
from skyline.analysis.algorithms.classic.stddev_from_moving_average import ewm_weights
from skyline.analysis.algorithms.prepare import Block, _std, _tail, row_search

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


def np_ks_test(b: Block, ctx: Context):
    m = b.m
    if ctx.classic:
        if ctx.now is None:
            return np.full(m, NONE, np.int8), np.zeros(m)
        base = np.full(m, float(ctx.now))
    else:
        base = b.t[:, -1].astype(np.float64)
    ref_lo = row_search(b.t, base - 3600, "left")
    ref_hi = row_search(b.t, base - 600, "left")
    votes, scores = np.zeros(m, np.int8), np.zeros(m)
    candidates = np.flatnonzero((ref_hi - ref_lo >= 20) & (b.n - ref_hi >= 20))
    for i in candidates:
        reference = b.v[i, ref_lo[i] : ref_hi[i]]
        probe = b.v[i, ref_hi[i] :]
        if reference.min() == reference.max():
            continue
        votes[i], scores[i] = ks_two_windows(reference, probe)
    return votes, scores


def np_mean_subtraction_cumulation(b: Block, ctx: Context):
    if b.n < 2:
        return sigma_test(np.full(b.m, np.nan), np.full(b.m, np.nan), ctx)
    x = b.d[:, :-1]
    mu = x.mean(axis=1)
    std = _std(x, mu, 0 if ctx.classic else 1)
    return sigma_test(b.d[:, -1] - mu, std, ctx)


def np_median_absolute_deviation(b: Block, ctx: Context):
    med = np.median(b.v, axis=1)
    dev = np.abs(b.v - med[:, None])
    mad = np.median(dev, axis=1)
    last = dev[:, -1]
    zero = mad == 0
    stat = last / mad
    exceeds = ~zero & (stat > 6)
    scores = np.where(zero | ~np.isfinite(stat), 0.0, stat / 6)
    valid = np.isfinite(mad) & np.isfinite(last)
    return judge(exceeds, valid, ctx), scores


def np_stddev_from_moving_average(b: Block, ctx: Context):
    w, sw, sw2 = ewm_weights(b.n)
    d = b.d
    mu = (d * w).sum(axis=1) / sw
    dev = (d - mu[:, None]) ** 2 * w
    num, den = sw * sw, sw * sw - sw2
    var = dev.sum(axis=1) / sw * (num / den) if den > 0 else np.full(b.m, np.nan)
    std = np.sqrt(np.maximum(var, 0.0))
    return sigma_test(d[:, -1] - mu, std, ctx)


def np_least_squares(b: Block, ctx: Context):
    if b.n < 3:
        return np.full(b.m, FALSE, np.int8), np.zeros(b.m)
    tf = b.t.astype(np.float64)
    xc = tf - tf.mean(axis=1)[:, None]
    yc = b.d - b.mean_d[:, None]
    slope = (xc * yc).sum(axis=1) / (xc * xc).sum(axis=1)
    err = yc - slope[:, None] * xc
    std = _std(err, err.mean(axis=1), 0)
    tail = _tail(err)
    votes, scores = sigma_test(tail, std, ctx)
    votes[(votes == TRUE) & ~((std > 0.5) & (np.abs(tail) > 0.5))] = FALSE
    return votes, scores


TWINS = {
    "histogram_bins": np_histogram_bins,
    "first_hour_average": np_first_hour_average,
    "stddev_from_average": np_stddev_from_average,
    "grubbs": np_grubbs,
    "ks_test": np_ks_test,
    "mean_subtraction_cumulation": np_mean_subtraction_cumulation,
    "median_absolute_deviation": np_median_absolute_deviation,
    "stddev_from_moving_average": np_stddev_from_moving_average,
    "least_squares": np_least_squares,
}


# Inputs -----------------------------------------------------------------------------------
def random_rows(seed: int, m: int, n: int, step: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Rows of several kinds; with ``step`` 15 ks_test's windows are long enough for
    scipy, and a level shift in the last 10 minutes of some rows makes it vote True."""
    rng = np.random.default_rng(seed)
    t = NOW - step * np.arange(n - 1, -1, -1)[None, :] - rng.integers(0, step, (m, 1))
    kind = rng.integers(0, 6, m)
    v = rng.standard_normal((m, n)) * rng.lognormal(0, 2, (m, 1))
    v[kind == 1] = np.round(v[kind == 1])  # few distinct values
    v[kind == 2] = np.cumsum(v[kind == 2], axis=1)  # random walk
    v[kind == 3] += 1e12  # a huge offset
    v[kind == 4] = rng.poisson(0.3, (int((kind == 4).sum()), n))  # mostly zeros
    spiked = rng.random(m) < 0.3
    v[spiked, -rng.integers(1, 4) :] += rng.choice([-1, 1]) * 50 * (np.abs(v[spiked]).max() + 1)
    shifted = rng.random(m) < 0.2  # the last 10 minutes on another level
    v[shifted, -(600 // step) :] += 10 * (np.abs(v[shifted]).max() + 1)
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
        np.where(x == 0, np.nan, x),  # ... first, where numba's median is not NaN
        np.where(x == n - 1, np.nan, np.where(x == 1, 100.0, x)),  # ... last
        1e15 + np.where(x % 5 == 0, 1.0, 0.0),
    ]


def assert_twins(t: np.ndarray, v: np.ndarray, full_duration: int = 86400) -> None:
    for mode, now in (("classic", NOW), ("classic", None), ("default", NOW)):
        ctx = Context(mode=mode, now=now, full_duration=full_duration)
        for name, twin in TWINS.items():
            with np.errstate(all="ignore"):
                want_votes, want_scores = twin(Block(t, v), ctx)
            votes, scores = run_rows(name, t, v, ctx)
            assert votes.tolist() == want_votes.tolist(), (name, mode)
            np.testing.assert_allclose(scores, want_scores, rtol=1e-9, atol=1e-12, err_msg=name)


# Tests ------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 61, 100, 1441])
def test_row_kernels_equal_their_numpy_twins_on_random_rows(seed, n):
    t, v = random_rows(seed, 60, n)
    assert_twins(t, v)
    assert_twins(t, v, full_duration=60 * n // 2)  # the first hour inside the window


@pytest.mark.parametrize("seed", range(3))
def test_row_kernels_equal_their_numpy_twins_where_ks_test_runs_scipy(seed):
    t, v = random_rows(seed, 80, 400, step=15)
    assert_twins(t, v)
    votes, _ = run_rows("ks_test", t, v, Context(mode="default", now=NOW))
    assert TRUE in votes.tolist() and FALSE in votes.tolist()


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 8, 9, 61, 240])
def test_row_kernels_equal_their_numpy_twins_on_hand_picked_rows(n):
    v = np.stack(hand_picked(n))
    t = np.tile(NOW - 60 * np.arange(n - 1, -1, -1, dtype=np.int64), (len(v), 1))
    assert_twins(t, v, full_duration=60 * n)
    assert_twins(t, v, full_duration=3600)  # the first hour ends at the last point


def test_row_kernels_vote_none_only_in_default_mode():
    n = 240
    v = np.stack(hand_picked(n))
    t = np.tile(NOW - 15 * np.arange(n - 1, -1, -1, dtype=np.int64), (len(v), 1))
    classic, default = Context(mode="classic", now=NOW), Context(mode="default", now=NOW)
    for name in CODES:
        assert NONE not in run_rows(name, t, v, classic)[0].tolist(), name
        assert set(run_rows(name, t, v, default)[0].tolist()) <= {TRUE, FALSE, NONE}
    inf_row = len(v) - 5  # the range overflows: histogram_bins cannot judge it
    assert run_rows("histogram_bins", t, v, default)[0][inf_row] == NONE
    assert run_rows("histogram_bins", t, v, classic)[0][inf_row] in (TRUE, FALSE)
    # classic ks_test needs the wall clock: without it every row is a None vote
    no_clock = run_rows("ks_test", t, v, Context(mode="classic", now=None))
    assert no_clock[0].tolist() == [NONE] * len(v) and not no_clock[1].any()


def loop_twin(t, v, rows, names, stop_at, ctx):
    """``ensemble_rows`` written as the ensemble's loop over the algorithms one by one."""
    votes = np.full((len(rows), len(names)), -2, np.int8)
    scores = np.full((len(rows), len(names)), np.nan)
    decided = np.zeros(len(rows), bool)
    for r, i in enumerate(rows):
        against = 0
        for j, name in enumerate(names):
            vote, score = run_rows(name, t[i : i + 1], v[i : i + 1], ctx)
            votes[r, j], scores[r, j] = vote[0], score[0]
            against += vote[0] == FALSE or (vote[0] == NONE and not ctx.classic)
            if against >= stop_at:
                decided[r] = True
                break
    return votes, scores, decided


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("stop_at", [0, 1, 3, 4, 5, 10])
def test_ensemble_rows_equal_the_algorithms_one_by_one(mode, stop_at):
    t, v = random_rows(7, 80, 300, step=15)
    v = np.concatenate([v, np.stack(hand_picked(300))])
    t = np.concatenate([t, t[: len(v) - len(t)]])
    rows = np.arange(len(v))[::-1][::2]  # read in place, out of order
    names = ("grubbs", "ks_test", "histogram_bins", "least_squares", "stddev_from_average",
             "median_absolute_deviation", "first_hour_average", "mean_subtraction_cumulation",
             "stddev_from_moving_average")  # fmt: skip
    codes = leading_codes(names + ("grubbs",))
    assert codes.tolist() == [CODES[n] for n in names]
    ctx = Context(mode=mode, now=NOW)
    got = ensemble_rows(t, v, rows, codes, stop_at, ctx)
    want = loop_twin(t, v, rows, names, stop_at, ctx)
    assert got[0].tolist() == want[0].tolist()
    np.testing.assert_array_equal(got[1], want[1])  # one code path: bit-identical
    assert got[2].tolist() == want[2].tolist()
    if stop_at == 4:
        assert 0 < got[2].sum() < len(rows)
    if stop_at == 10:  # no row stops early: every algorithm ran, ks_test's scipy included
        assert (got[0] != -2).all() and TRUE in got[0][:, 1].tolist()


def test_leading_codes_stop_at_the_first_algorithm_without_a_row_kernel():
    assert leading_codes(("grubbs", "grubbs", "histogram_bins")).tolist() == [CODES["grubbs"]]
    assert leading_codes(("ks_test", "nope", "grubbs")).tolist() == [CODES["ks_test"]]
    assert leading_codes(()).tolist() == []


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("consensus", [2, 6, 7, 9])
def test_settle_early_settles_rows_as_run_ensemble_judges_them(mode, consensus):
    t, v = random_rows(11, 200, 500, step=15)
    v[::17, -100:] = 3.0  # boring
    t[::23] -= 7200  # stale
    opts = EnsembleOptions(mode=mode, consensus=consensus, full_duration=500 * 15)
    rows = np.arange(len(v))[1::2]
    res, left = settle_early(t, v, rows, now=NOW, options=opts)
    assert len(left) == 0  # every default algorithm has a row kernel
    kinds = set()
    for r in range(len(rows)):
        want = run_ensemble((t[rows[r]], v[rows[r]]), now=NOW, options=opts)
        got = res.verdict(r)
        assert (got.skip, got.anomalous, got.run, got.votes) == (
            want.skip, want.anomalous, want.run, want.votes)  # fmt: skip
        assert got.scores == want.scores  # the same compiled loop
        kinds.add((got.skip, got.anomalous, len(got.run)))
    assert ("Boring", None, 0) in kinds and ("Stale", None, 0) in kinds
    assert any(a is False for _, a, _ in kinds)
    assert any(a for _, a, _ in kinds) or consensus == 9  # nine Trues: none here


def test_a_kernel_put_in_place_of_a_row_kernel_runs_as_itself_in_every_path(monkeypatch):
    def boom(block, ctx):
        raise RuntimeError("broken")

    monkeypatch.setattr(ALGORITHMS.get("stddev_from_average"), "kernel", boom)
    assert leading_codes(CLASSIC_ORDER).tolist() == [0, 1]  # the loop stops before it
    t, v = random_rows(3, 60, 300)
    opts = EnsembleOptions(mode="classic", early_exit=False, full_duration=300 * 60)
    res = run_ensemble_batch(t, v, now=NOW, options=opts)
    for i in range(len(v)):
        want = run_ensemble((t[i], v[i]), now=NOW, options=opts)
        assert res.verdict(i) == want
        assert want.skip or want.votes["stddev_from_average"] is None
    with pytest.raises(ValueError, match="no row kernel"):
        row_kernel(boom)


def test_a_row_with_a_nan_votes_as_numpy_did_whatever_numbas_median_makes_of_it():
    # numba's median of a row with a NaN depends on where its partitioning meets the
    # NaN; numpy's is NaN.  A sealed block can hold a NaN (seal does not refuse one).
    rng = np.random.default_rng(4)
    v = rng.normal(size=(300, 40))
    v[np.arange(300), rng.integers(0, 40, 300)] = np.nan
    v[::3, -1] += 50
    t = np.tile(NOW - 60 * np.arange(39, -1, -1, dtype=np.int64), (300, 1))
    assert_twins(t, v)
