"""The classic sweep's block path: vectorised counter detection and derivatives equal
their per-series twins, chunk matrices decode like ``to_series``, and ``analyse``
gives every series the verdict the one-series-at-a-time path gives."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from skyline.analysis.algorithms import CLASSIC_ORDER, EnsembleOptions, run_ensemble
from skyline.analysis.algorithms.exceptions import boring_rows, distinct_counts, is_boring
from skyline.analysis.algorithms.prepare import (
    counter_rows,
    derivative_rows,
    is_counter,
    non_negative_derivative,
    row_search,
)
from skyline.analysis.analyzer.analysis import (
    VerdictMap,
    analyse,
    anomalous_verdicts,
    verdict_counts,
)
from skyline.store.timeseries import (
    ChunkRow,
    DecodeArena,
    Series,
    encode,
    header,
    to_series,
    to_series_many,
)

NOW = 1_700_000_000


def rows_of(v2d: np.ndarray, t2d: np.ndarray | None = None) -> list[Series]:
    t2d = np.tile(np.arange(v2d.shape[1], dtype=np.int64), (len(v2d), 1)) if t2d is None else t2d
    return [Series(t2d[i], v2d[i]) for i in range(len(v2d))]


def check_counters(v2d: np.ndarray) -> None:
    want = [is_counter(s) for s in rows_of(v2d)]
    assert counter_rows(v2d).tolist() == want
    rows = np.arange(len(v2d))[::-1][::2]  # some rows, out of order, read in place
    assert counter_rows(v2d, rows).tolist() == [want[i] for i in rows]


def check_derivatives(v2d: np.ndarray) -> None:
    t2d = 1000 + 60 * np.tile(np.arange(v2d.shape[1], dtype=np.int64), (len(v2d), 1))
    seen = []
    for rows, t_d, v_d in derivative_rows(t2d, v2d):
        assert t_d.shape == v_d.shape == (len(rows), t_d.shape[1])
        for r, i in enumerate(rows.tolist()):
            want = non_negative_derivative(Series(t2d[i], v2d[i]))
            assert t_d[r].tolist() == want.timestamps.tolist()
            assert v_d[r].tolist() == want.values.tolist()
            seen.append(i)
    assert sorted(seen) == list(range(len(v2d)))


# --- counter_rows and derivative_rows against is_counter and non_negative_derivative ---
def hand_picked() -> list[np.ndarray]:
    n = 301  # 300 steps: up to 3 falls allowed, at least 150 rises needed
    up = np.arange(n, dtype=float)
    falls = [up.copy() for _ in range(5)]
    for k, row in enumerate(falls):  # k restarts from 0 (0 to 4 falls; 3 allowed)
        for j in range(k):
            row[50 + 40 * j :] -= row[50 + 40 * j]
    flat_half = np.repeat(np.arange(151, dtype=float), 2)[:n]  # exactly 150 rises
    flat_less = np.repeat(np.arange(150, dtype=float), 3)[:n]  # fewer rises
    negative, nan_row, both = up.copy(), up.copy(), up.copy()
    negative[7] = -0.5
    nan_row[9] = np.nan
    both[7], both[200] = -0.5, np.nan  # NaN minimum: the negative value does not exclude
    return [
        np.vstack([up, *falls, flat_half, flat_less, negative, nan_row, both, np.zeros(n), -up]),
        np.array([[0.0, 1.0], [2.0, 1.0]]),  # too short to be a counter
        np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 2.0], [2.0, 1.0, 0.0], [0.0, -1.0, 5.0]]),
        np.empty((0, 5)),
    ]


@pytest.mark.parametrize("v2d", hand_picked(), ids=lambda a: f"{a.shape[0]}x{a.shape[1]}")
def test_counter_rows_and_derivatives_equal_their_twins_on_hand_picked_rows(v2d):
    check_counters(v2d)
    if v2d.shape[1] and np.isfinite(v2d).all():
        check_derivatives(v2d)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 6).flatmap(
        lambda m: st.integers(0, 40).flatmap(
            lambda n: arrays(
                np.float64, (m, n), elements=st.sampled_from([0.0, 1.0, 2.0, 3.5, -1.0, 7.0])
            )
        )
    )
)
def test_counter_rows_equal_is_counter_on_random_rows(v2d):
    check_counters(v2d)
    check_counters(np.cumsum(np.abs(v2d), axis=1))  # rising rows: counters, near-counters


@pytest.mark.parametrize("seed", range(4))
def test_counters_with_resets_on_long_random_rows(seed):
    rng = np.random.default_rng(seed)
    v2d = np.cumsum(rng.poisson(rng.uniform(0.2, 5, (60, 1)), (60, 1440)), axis=1).astype(float)
    for i in range(0, 60, 3):  # 0 to 19 resets, around the 14 allowed
        for j in rng.choice(np.arange(1, 1440), i // 3, replace=False):
            v2d[i, j:] -= v2d[i, j - 1] - rng.uniform(0, 1)
    v2d[rng.random(60) < 0.2, -5] = -3.0
    check_counters(v2d)
    check_derivatives(v2d)


# --- row_search: searchsorted on every row ------------------------------------------
def check_row_search(t2d: np.ndarray, x: np.ndarray) -> None:
    for side in ("left", "right"):
        want = [int(np.searchsorted(t2d[i], x[i], side)) for i in range(len(t2d))]  # type: ignore[call-overload]
        assert row_search(t2d, x, side).tolist() == want, side


@pytest.mark.parametrize("seed", range(6))
def test_row_search_equals_searchsorted_per_row(seed):
    rng = np.random.default_rng(seed)
    m, n = 64, int(rng.integers(1, 400))
    regular = 1000 + rng.integers(1, 90, (m, 1)) * np.arange(n)[None, :]
    gaps = 1000 + np.cumsum(rng.integers(1, 200, (m, n)), axis=1)  # irregular rows
    t2d = np.where((rng.random(m) < 0.5)[:, None], regular, gaps).astype(np.int64)
    lo, hi = t2d[:, 0] - 300, t2d[:, -1] + 300
    x = rng.integers(lo, hi + 1)
    check_row_search(t2d, x)
    check_row_search(t2d, x + rng.uniform(-1, 1, m))  # float targets between timestamps
    check_row_search(t2d, t2d[np.arange(m), rng.integers(0, n, m)])  # exactly on a timestamp


@pytest.mark.parametrize(
    ("t2d", "x"),
    [
        ([[5]], [5]),  # one point, on it, before it and after it
        ([[5], [5], [5]], [4, 5, 6]),
        ([[10, 20, 30, 40]] * 7, [-(2**40), 9, 10, 25, 40, 41, 2**40]),  # far off both ends
        ([[10, 11, 12, 1000]] * 4, [11, 12, 13, 999]),  # one long gap: the guess misses
        ([[1, 2**32 - 2, 2**32 - 1]] * 3, [2, 2**32 - 2, 2**32]),  # the widest timestamps
        ([[100, 160, 220, 280]] * 3, [159.5, 160.0, 160.5]),
    ],
)
def test_row_search_hand_picked(t2d, x):
    check_row_search(np.array(t2d, np.int64), np.array(x))


def test_row_search_of_no_rows_and_no_columns():
    assert row_search(np.empty((0, 5), np.int64), np.empty(0, np.int64)).tolist() == []
    assert row_search(np.empty((3, 0), np.int64), np.zeros(3, np.int64)).tolist() == [0, 0, 0]


# --- chunk matrices ------------------------------------------------------------------
def test_equal_size_chunks_decode_into_rows_of_one_arena():
    t = np.arange(100, 110)
    chunks = [[encode(t, np.arange(10.0) * (k + c)) for k in range(5)] for c in (0, 10)]
    arena = DecodeArena(16)
    got = [s for bufs in chunks for s in to_series_many(bufs, arena)]
    assert all(type(s) is ChunkRow for s in got)
    assert [s.row for s in got] == list(range(10)) and arena.buf.shape == (2, 16, 10)
    for s, b in zip(got, [b for bufs in chunks for b in bufs], strict=True):
        assert s.values.base is arena.buf and s.timestamps.base is arena.buf
        assert (
            s.timestamps.tolist()
            == to_series(b).timestamps.tolist()
            == arena.buf[0, s.row].tolist()
        )
        assert s.values.tolist() == to_series(b).values.tolist()
    full = to_series_many([encode(t[:4], np.ones(4))] * 20, arena)  # no room left: a new one
    assert full[0].row == 0 and full[0].values.base is arena.buf and arena.buf.shape == (2, 20, 4)


@pytest.mark.parametrize(
    "bufs",
    [
        [header(1) + encode([1, 2], [1.0, 2.0]), header(4) + encode([5, 6], [3.0, 4.0])],
        [header(1) + encode([1, 2], [1.0, 2.0]), encode([5, 6, 7], [3.0, 4.0, 5.0])],  # mixed
        [encode([2, 1], [1.0, 2.0]), encode([5, 6], [3.0, 4.0]), encode([7, 7], [1.0, 2.0])],
        [encode([1, 2], [np.nan, 2.0]), encode([5, 6], [3.0, np.inf])],
        [encode([1, 2], [1.0, 2.0]) + b"\x01", encode([5, 6], [3.0, 4.0]) + b"\x02"],
        [header(1), header(2)],
        [encode([1], [1.0])],
    ],
)
def test_chunks_decode_as_to_series_does(bufs):
    got = to_series_many(bufs)
    for g, b in zip(got, bufs, strict=True):
        want = to_series(b)
        assert g.timestamps.tolist() == want.timestamps.tolist()
        assert g.values.tolist() == want.values.tolist()


# --- analyse: every path gives the one-series-at-a-time verdict -----------------------
def pass_input(seed: int) -> dict[str, Series]:
    """Chunk rows (one MGET chunk decoded into an arena), plain series of one length (stacked),
    a few of other lengths (one by one), an unsorted one, a NaN one and an empty one;
    counters with and without resets, spikes, stale and boring series among them."""
    rng = np.random.default_rng(seed)
    m, n = 48, 300
    t = (NOW - rng.integers(0, 60, m))[:, None] - 60 * np.arange(n - 1, -1, -1)[None, :]
    v = 50 + rng.normal(0, 2, (m, n))
    v[::5] = np.cumsum(rng.poisson(3, (len(v[::5]), n)), axis=1)  # counters
    v[5::10, 150:] -= v[5::10, 149:150] - 1  # ... some with a reset
    v[1::7, -2:] += 80  # spikes
    v[2::9, -150:] = 4.0  # boring
    t[3::11] -= 3600  # stale
    arena = DecodeArena(40)  # as read_many: two MGET chunks decoded into one arena
    chunk = [
        s
        for a in (0, 16)
        for s in to_series_many([encode(t[i], v[i]) for i in range(a, a + 16)], arena)
    ]
    out: dict[str, Series] = {f"chunk.{i}": s for i, s in enumerate(chunk)}
    out.update({f"plain.{i}": Series(t[i, 1:].copy(), v[i, 1:].copy()) for i in range(32, 44)})
    out.update(
        {f"short.{i}": Series(t[i, -200:].copy(), v[i, -200:].copy()) for i in range(44, 48)}
    )
    out["plain.unsorted"] = Series(t[0, 1:][::-1].copy(), v[0, 1:][::-1].copy())
    bad = v[1, 1:].copy()
    bad[40] = np.nan
    out["plain.nan"] = Series(t[1, 1:].copy(), bad)
    out["empty"] = Series.empty()
    assert sum(type(s) is ChunkRow for s in out.values()) == 32
    return out


def one_by_one(series: dict[str, Series], opts: EnsembleOptions):
    verdicts, counters = {}, set()
    for name, s in series.items():
        if is_counter(s):
            counters.add(name)
            s = non_negative_derivative(s)
        verdicts[name] = run_ensemble(s, now=NOW, options=opts)
    return verdicts, counters


def assert_same_verdict(got, want, name):
    assert (got.anomalous, got.skip, got.run, got.triggered) == (
        want.anomalous, want.skip, want.run, want.triggered), name  # fmt: skip
    assert got.votes == want.votes and (got.value, got.timestamp) == (want.value, want.timestamp)
    assert got.scores == pytest.approx(want.scores, rel=1e-12, abs=1e-12), name


@pytest.mark.parametrize("mode", ["classic", "default"])
@pytest.mark.parametrize("seed", [1, 2])
def test_analyse_equals_the_one_by_one_path(mode, seed):
    series = pass_input(seed)
    opts = EnsembleOptions(mode, CLASSIC_ORDER, 6, 100, 500, 100, 1)
    got, counters = analyse(series, NOW, opts, True)
    want, want_counters = one_by_one(series, opts)
    assert counters == want_counters and len(counters) >= 8
    assert isinstance(got, VerdictMap) and list(got) == list(series) and len(got) == len(series)
    anomalies = got.anomalies()  # before any Verdict of the others is built
    assert list(anomalies) == [n for n, w in want.items() if w.anomalous] and anomalies
    skips, triggered = got.counts()
    assert skips == Counter(w.skip for w in want.values() if w.skip)
    assert triggered == Counter(a for w in want.values() for a in w.triggered)
    for name, verdict in anomalies.items():
        assert_same_verdict(verdict, want[name], name)
    assert anomalous_verdicts(got) == anomalous_verdicts(want) == anomalies  # dict or VerdictMap
    assert verdict_counts(got) == verdict_counts(want) == (skips, triggered)
    for name, verdict in got.items():
        assert_same_verdict(verdict, want[name], name)
    assert {"Stale", "Boring", "EmptyTimeseries"} <= set(skips)


def test_analyse_without_counter_detection_and_the_mapping_protocol():
    series = pass_input(3)
    opts = EnsembleOptions("classic", CLASSIC_ORDER, 6, 100, 500, 100, 1)
    got, counters = analyse(series, NOW, opts, False)
    assert counters == set()
    for name, s in series.items():
        assert_same_verdict(got[name], run_ensemble(s, now=NOW, options=opts), name)
    assert "chunk.0" in got and "nope" not in got and got.get("nope") is None
    with pytest.raises(KeyError):
        got["nope"]
    assert dict(got) == dict(got.items()) and got == dict(got.items())
    assert list(got.values()) == [got[name] for name in series] and len(got.values()) == len(series)
    assert got["chunk.1"] in got.values() and ("chunk.1", got["chunk.1"]) in got.items()


# --- boring_rows: distinct_counts and is_boring without the sort -------------------------
@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 5).flatmap(
        lambda m: st.integers(0, 12).flatmap(
            lambda n: arrays(
                np.float64,
                (m, n),
                elements=st.sampled_from([0.0, -0.0, 1.0, 2.5, np.nan, np.inf, -np.inf]),
            )  # fmt: skip
        )
    ),
    st.integers(0, 3),
    st.integers(0, 14),
    st.sampled_from(["classic", "default"]),
)
def test_boring_rows_equal_distinct_counts_and_is_boring(v2d, set_size, last, mode):
    want = is_boring(distinct_counts(v2d, last), set_size, mode)
    assert boring_rows(v2d, last, set_size, mode).tolist() == want.tolist()


@pytest.mark.parametrize("mode", ["classic", "default"])
def test_boring_rows_on_hand_picked_tails(mode):
    v2d = np.array([[5.0] * 6, [0.0, -0.0, 0.0, -0.0, 0.0, 0.0], [1.0, 1, 1, 1, 1, 2],
                    [2.0, 1, 1, 1, 1, 1], [np.nan] * 6, [1.0, 1, 1, np.nan, 1, 1],
                    [np.inf] * 6, [7.0, 7, 7, 7, 3, 3]])  # fmt: skip
    for set_size, last in [(1, 0), (1, 4), (1, 6), (2, 0), (2, 2), (0, 3)]:
        want = is_boring(distinct_counts(v2d, last), set_size, mode)
        assert boring_rows(v2d, last, set_size, mode).tolist() == want.tolist()
    assert boring_rows(v2d, 4, 1, mode).tolist() == [True, True, False, True, False,
                                                     False, True, False]  # fmt: skip
