"""The machinery around the vectorised detector, each against a slow, obvious twin:
row medians, shift windows, state packing, lockstep stepping of many series, the
counter wrapper; and hostile input (NaN, inf, duplicate and unsorted timestamps)."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from skyline.analysis.algorithms.counters import CounterAware
from skyline.analysis.algorithms.spike_level import SpikeLevel
from skyline.analysis.algorithms.state import (
    HEADER_SIZE,
    StateLayout,
    last_learned,
    nan_count_rows,
    nan_median_count_rows,
    nan_median_rows,
    shift_in,
)
from skyline.analysis.algorithms.stepping import (
    StreamAdapter,
    default_vector_detector,
    score_points,
)
from skyline.analysis.algorithms.streaming import NEUTRAL_SCORE

T0 = 1_700_000_000.0
STEP = 60.0


def slow_median(row: list[float]) -> float:
    vals = [x for x in row if not math.isnan(x)]
    return statistics.median(vals) if vals else math.nan


@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("seed", range(5))
def test_nan_median_rows_equals_statistics_median(seed, full):
    rng = np.random.default_rng(seed)
    a = rng.normal(0, 10, (50, 1 + seed * 7 + 25 * full))  # up to 54 columns
    if full:  # no NaN anywhere: wide rows take the partition
        a[2] = np.round(a[2])  # ties
        a[3, ::2] = np.inf
    else:
        a[rng.random(a.shape) < 0.3] = np.nan
        a[0] = np.nan  # a row with nothing
    a[1, :] = 5.0  # all equal
    got = nan_median_rows(a)
    assert np.array_equal(nan_median_count_rows(a)[0], got, equal_nan=True)
    want = [slow_median(row.tolist()) for row in a]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12, equal_nan=True)
    assert nan_count_rows(a).tolist() == [sum(not math.isnan(x) for x in r) for r in a]


def test_shift_in_equals_list_appends():
    rng = np.random.default_rng(1)
    win = np.full((4, 3), np.nan)
    lists = [[math.nan] * 3 for _ in range(4)]
    for _ in range(20):
        x = rng.normal(size=4)
        mask = rng.random(4) < 0.6
        shift_in(win, x, mask)
        for r in range(4):
            if mask[r]:
                lists[r] = lists[r][1:] + [float(x[r])]
        np.testing.assert_array_equal(win, np.array(lists))


def test_state_round_trips_exactly_and_refuses_what_is_not_its_own():
    det = default_vector_detector()
    rng = np.random.default_rng(2)
    state = det.new_state(3)
    t = T0 + STEP * np.arange(500)
    vs = [rng.normal(size=500), rng.normal(size=200), np.ones(10)]
    score_points(det, state, [t, t[:200], t[:10]], vs)
    blobs = det.layout.pack_rows(state)
    assert all(len(b) == det.layout.nbytes for b in blobs)
    # jemalloc (Redis's usual allocator) stores a string of up to 7,162 bytes in its
    # 7 KB size class and a longer one in the 8 KB class (MEMORY USAGE 7,256 against
    # 8,280 on Redis 7.0): the state stays in the smaller one
    assert det.layout.nbytes <= 7162
    back, ok = det.layout.unpack_rows(blobs, det.new_state(3))
    assert ok.all() and back.tobytes() == state.tobytes()
    assert last_learned(blobs[1]) == t[199]
    assert det.layout.headers(state) == [b[:HEADER_SIZE] for b in blobs]
    other = StateLayout(det.layout.name, det.layout.version + 1, det.layout.fields)
    stale = other.pack_rows(state)[0]
    bad = [None, blobs[0][:-1], stale, b"garbage", blobs[2]]
    fresh = det.new_state(5)
    back, ok = det.layout.unpack_rows(bad, fresh)
    assert ok.tolist() == [False, False, False, False, True]
    assert back[:4].tobytes() == fresh[:4].tobytes()
    assert back[4].tobytes() == state[2].tobytes()
    assert last_learned(stale) == t[-1] and last_learned(b"garbage") is None


def one_at_a_time(make, ts, vs) -> list[float]:
    """The slow twin of score_points: one series, one point, through learn/score."""
    adapter = StreamAdapter(make())
    out = []
    for t, v in zip(ts.tolist(), vs.tolist(), strict=True):
        score = adapter.detector.step(adapter.state.copy(), np.array([t]), np.array([v]))[0]
        out.append(score)
        adapter.learn_one(t, v)
    return out


@pytest.mark.parametrize(
    "lengths",
    [[700, 0, 1, 450, 699, 90], [700, 700, 700], [1, 1, 1, 1], [0, 3, 0], [0, 0]],
    ids=["ragged", "equal", "one-each", "some-none", "none"],
)
def test_lockstep_equals_one_series_at_a_time(lengths):
    """score_points (score_flat: every row stepping at once, a gathered subset, or a
    single point for every row) against each series alone, point by point."""
    rng = np.random.default_rng(3)
    ts = [T0 + STEP * np.arange(n) + rng.integers(0, 30) for n in lengths]
    vs = []
    for n in lengths:
        v = rng.normal(100, 5, n)
        if n > 500:
            v[400] += 80
            v[550:] += 30
        vs.append(v)
    det = default_vector_detector()
    got = score_points(det, det.new_state(len(lengths)), ts, vs)
    for t, v, g in zip(ts, vs, got, strict=True):
        want = one_at_a_time(default_vector_detector, t, v)
        np.testing.assert_array_equal(g, np.array(want))
    assert [len(g) for g in got] == lengths
    if max(lengths) > 500:
        assert max(np.nanmax(g) for g in got if len(g)) > 0.85  # the injected spike (z 16: 0.89)


def test_a_batch_split_anywhere_gives_the_same_scores():
    rng = np.random.default_rng(4)
    t = T0 + STEP * np.arange(600)
    v = rng.normal(0, 1, 600)
    v[450] = 40
    det = default_vector_detector()
    whole = score_points(det, det.new_state(1), [t], [v])[0]
    state = det.new_state(1)
    parts = []
    for a, b in [(0, 1), (1, 300), (300, 301), (301, 449), (449, 600)]:
        parts.append(score_points(det, state, [t[a:b]], [v[a:b]])[0])
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_hostile_points_are_not_judged_and_leave_the_state_alone():
    det = default_vector_detector()
    rng = np.random.default_rng(5)
    state = det.new_state(1)
    t = T0 + STEP * np.arange(300)
    score_points(det, state, [t], [rng.normal(size=300)])
    before = state.copy()
    bad_t = np.array([math.nan, math.inf, t[-1], t[-5], t[-1] + 60, t[-1] + 120])
    bad_v = np.array([1.0, 1.0, 1.0, 1.0, math.nan, -math.inf])
    scores = score_points(det, state, [bad_t], [bad_v])[0]
    assert np.isnan(scores).all()
    assert state.tobytes() == before.tobytes()
    adapter = StreamAdapter(default_vector_detector())
    assert adapter.score_one(math.nan, 1.0) == NEUTRAL_SCORE
    assert adapter.score_one(T0, math.inf) == NEUTRAL_SCORE


def test_warm_up_is_neutral():
    """The first 100 points decide counter or gauge and are never flagged."""
    det = default_vector_detector()
    v = np.full(100, 3.0)
    v[80] = 1e9
    scores = score_points(det, det.new_state(1), [T0 + STEP * np.arange(100)], [v])[0]
    assert set(scores.tolist()) == {NEUTRAL_SCORE}


def slow_counter_aware(ts, vs, decide_after: int = 100) -> list[float]:
    """CounterAware's twin, one point at a time: a plain SpikeLevel learns the raw
    values while the first points decide (reported neutral); a counter then starts
    a fresh SpikeLevel on the non-negative increases."""
    inner = StreamAdapter(SpikeLevel())
    out, seen, prev, mode = [], [], None, None
    for t, v in zip(ts.tolist(), vs.tolist(), strict=True):
        deciding = mode is None
        if deciding:
            seen.append(v)
            if len(seen) >= decide_after:
                d = np.diff(seen)
                rising, falling = int((d > 0).sum()), int((d < 0).sum())
                mode = ("counter" if min(seen) >= 0 and rising >= len(d) // 2
                        and falling <= max(1, len(d) // 100) else "gauge")  # fmt: skip
                if mode == "counter":
                    inner = StreamAdapter(SpikeLevel())
        x = v - prev if mode == "counter" else v
        prev = v
        if mode == "counter" and x < 0:
            out.append(NEUTRAL_SCORE)
            continue
        s = inner.detector.step(inner.state.copy(), np.array([t]), np.array([x]))[0]
        inner.learn_one(t, x)
        out.append(NEUTRAL_SCORE if deciding else s)
    return out


@pytest.mark.parametrize("kind", ["counter", "gauge", "counter_with_resets"])
def test_counter_aware_equals_its_slow_twin(kind):
    rng = np.random.default_rng(6)
    n = 900
    t = T0 + STEP * np.arange(n)
    if kind == "gauge":
        v = rng.normal(10, 1, n)
    else:
        v = np.cumsum(rng.poisson(50, n)).astype(float)
        if kind == "counter_with_resets":
            v[500:] -= v[500] - 3
            v[700:] -= v[700]
    det = CounterAware(SpikeLevel())
    got = score_points(det, det.new_state(1), [t], [v])[0]
    np.testing.assert_array_equal(got, np.array(slow_counter_aware(t, v)))
    state = det.new_state(1)
    score_points(det, state, [t], [v])
    assert det.layout.view(state, "cw_mode").tolist() == [1.0 if kind == "gauge" else 2.0]
    if kind == "gauge":  # after the deciding points, exactly the inner detector's scores
        inner = SpikeLevel()
        plain = score_points(inner, inner.new_state(1), [t], [v])[0]
        np.testing.assert_array_equal(got[100:], plain[100:])
