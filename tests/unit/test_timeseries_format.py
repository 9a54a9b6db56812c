"""The record format and ``prepare``, checked against a slow, obviously-correct twin."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skyline.store.timeseries import (
    RECORD_SIZE,
    decode,
    encode,
    header,
    prepare,
    to_series,
    to_series_many,
)


def slow_prepare(points: list[tuple[int, float]]) -> tuple[list[int], list[float]]:
    """Last write wins per timestamp, sorted, non-finite values dropped — by dict."""
    latest: dict[int, float] = {}
    for t, v in points:
        latest[t] = v
    ts = sorted(t for t, v in latest.items() if math.isfinite(v))
    return ts, [latest[t] for t in ts]


def check_twin(points: list[tuple[int, float]]) -> None:
    buf = encode([p[0] for p in points], [p[1] for p in points]) if points else b""
    got = to_series(buf)
    want_t, want_v = slow_prepare(points)
    assert got.timestamps.tolist() == want_t
    assert got.values.tolist() == want_v
    assert got.timestamps.dtype == np.int64 and got.values.dtype == np.float64


HAND_PICKED = [
    [],
    [(100, 1.0)],
    [(100, 1.0), (100, 2.0)],  # duplicate: last write wins
    [(300, 3.0), (100, 1.0), (200, 2.0)],  # unsorted
    [(100, 1.0), (200, float("nan")), (300, float("inf")), (400, -float("inf"))],
    [(5, 1.0), (3, 2.0), (5, 3.0), (3, 4.0), (4, 5.0)],
    [(2**32 - 1, 1e308), (1, -1e308)],  # extreme timestamps and magnitudes
    [(100, 0.0), (100, -0.0)],
    [(100, 1.0), (100, float("nan"))],  # a later non-finite write still replaces the earlier one
]


@pytest.mark.parametrize("points", HAND_PICKED)
def test_prepare_matches_twin_on_hand_picked(points):
    check_twin(points)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=60),
            st.one_of(
                st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5).map(float)
            ),
        ),
        max_size=80,
    )
)
def test_prepare_matches_twin_on_random(points):
    check_twin(points)


def test_prepare_matches_twin_on_large_random_series():
    rng = np.random.default_rng(42)
    ts = rng.integers(1_700_000_000, 1_700_000_000 + 5000, size=20_000)
    vs = rng.normal(size=20_000)
    check_twin(list(zip(ts.tolist(), vs.tolist(), strict=True)))


def test_record_layout_is_twelve_bytes_little_endian():
    buf = encode([1, 2], [1.5, -2.0])
    assert len(buf) == 2 * RECORD_SIZE == 24
    assert buf[:4] == (1).to_bytes(4, "little")
    assert np.frombuffer(buf[4:12], "<f8")[0] == 1.5


def test_header_record_is_stripped_and_counts_rewrites():
    rec, rewrites = decode(header(7) + encode([10, 20], [1.0, 2.0]))
    assert rewrites == 7
    assert rec["t"].tolist() == [10, 20]
    rec, rewrites = decode(encode([10], [1.0]))
    assert rewrites == 0 and len(rec) == 1


def test_trailing_partial_record_is_ignored():
    buf = encode([10, 20], [1.0, 2.0]) + b"\x01\x02\x03"
    assert to_series(buf).timestamps.tolist() == [10, 20]
    assert len(to_series(b"\x00" * 5)) == 0


def test_prepare_does_not_modify_its_input():
    rec, _ = decode(encode([3, 1, 2], [3.0, 1.0, 2.0]))
    before = rec.copy()
    prepare(rec)
    assert (rec == before).all()


# --- bulk decoding of a whole MGET chunk equals decoding each value --------------------
def check_many(bufs):
    got = to_series_many(bufs)
    want = [to_series(b) for b in bufs]
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.timestamps.tolist() == w.timestamps.tolist()
        assert g.values.tolist() == w.values.tolist()


def test_to_series_many_on_hand_picked_chunks():
    clean = encode([1, 2, 3], [1.0, 2.0, 3.0])
    check_many([clean, None, b"", clean])
    check_many([header(3) + encode([5, 6], [1.0, 2.0]), encode([9, 1], [1.0, 2.0])])
    check_many([encode([1, 1], [1.0, 2.0]), encode([2], [float("nan")]), header(1)])
    check_many([encode([10], [1.0]), encode([1], [2.0])])  # order is not compared across keys
    check_many([encode([1, 2], [1.0, 2.0]) + b"\x01\x02", b"\x00" * 5])
    check_many([])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.none(),
            st.lists(
                st.tuples(st.integers(1, 30), st.sampled_from([0.0, 1.5, -2.0, float("nan")])),
                max_size=12,
            ).map(lambda pts: encode([p[0] for p in pts], [p[1] for p in pts]) if pts else b""),
        ),
        max_size=8,
    ),
    st.booleans(),
)
def test_to_series_many_matches_to_series_on_random_chunks(bufs, with_header):
    if with_header and bufs and bufs[0]:
        bufs[0] = header(2) + bufs[0]
    check_many(bufs)


# --- the compiled row copy of a uniform chunk against a plain loop ---------------------
def slow_copy_rows(ts, vs):
    """Each row as lists, and whether its timestamps strictly increase and its values
    are all finite."""
    rows = []
    for t_row, v_row in zip(ts.tolist(), vs.tolist(), strict=True):
        rising = all(b > a for a, b in zip(t_row, t_row[1:], strict=False))
        rows.append((t_row, v_row, rising and all(math.isfinite(v) for v in v_row)))
    return rows


def check_copy_rows(ts, vs):
    from skyline.store.codec import RECORD, _copy_rows

    rec = np.empty(ts.shape, RECORD)
    rec["t"], rec["v"] = ts, vs
    m, n = ts.shape
    first = 3  # rows after others in the arena
    buf = np.full((2, first + m + 2, n), -7, np.int64)
    ok = np.empty(m, np.bool_)
    _copy_rows(rec["t"], rec["v"], buf[0], buf[1].view(np.float64), first, ok)
    v2d = buf[1].view(np.float64)
    for i, (t_row, v_row, good) in enumerate(slow_copy_rows(ts, vs)):
        assert buf[0, first + i].tolist() == t_row
        assert v2d[first + i].tobytes() == np.array(v_row).tobytes()  # NaN and -0.0 too
        assert bool(ok[i]) is good
    assert (buf[:, :first] == -7).all() and (buf[:, first + m :] == -7).all()  # untouched


@pytest.mark.parametrize(
    "t_rows, v_rows",
    [
        ([[1, 2, 3]], [[1.0, 2.0, 3.0]]),
        ([[0]], [[float("nan")]]),  # one point, not finite
        ([[0]], [[-0.0]]),  # timestamp 0 is above the kernel's start
        ([[5, 5], [5, 6]], [[1.0, 1.0], [1.0, 1.0]]),  # a duplicate timestamp
        ([[6, 5], [1, 2]], [[1.0, 2.0], [float("inf"), 2.0]]),  # falling; infinite
        ([[2**32 - 2, 2**32 - 1]], [[1e308, -1e308]]),
    ],
)
def test_copy_rows_matches_twin_on_hand_picked(t_rows, v_rows):
    check_copy_rows(np.array(t_rows, np.uint32), np.array(v_rows, np.float64))


@pytest.mark.parametrize("seed", range(20))
def test_copy_rows_matches_twin_on_random(seed):
    rng = np.random.default_rng(seed)
    m, n = int(rng.integers(1, 6)), int(rng.integers(1, 40))
    ts = np.sort(rng.integers(0, 2**32, (m, n)), axis=1).astype(np.uint32)
    vs = rng.normal(0, 1e3, (m, n))
    for _ in range(int(rng.integers(0, 4))):  # damage: a repeat, a fall, a non-finite value
        i, j = int(rng.integers(m)), int(rng.integers(n))
        kind = int(rng.integers(3))
        if kind == 0 and j:
            ts[i, j] = ts[i, j - 1]
        elif kind == 1 and j:
            ts[i, j] = ts[i, j - 1] // 2
        else:
            vs[i, j] = rng.choice([np.nan, np.inf, -np.inf])
    check_copy_rows(ts, vs)


@pytest.mark.parametrize("with_header", [False, True])
def test_to_series_many_on_uniform_chunks(with_header):
    """Values all of one size take the arena path; each decodes as alone."""
    rng = np.random.default_rng(1)
    bufs = []
    for k in range(6):
        t = np.cumsum(rng.integers(1, 5, 20)) + 100
        v = rng.normal(size=20)
        if k == 2:
            t[5] = t[4]  # a duplicate: prepared as alone
        if k == 4:
            v[3] = np.nan
        bufs.append((header(20) if with_header else b"") + encode(t, v))
    check_many(bufs)
