"""Sealed blocks (pcodec) and the series that start with one, against slow twins.

The twin of the whole read path is ``slow_series``: every point in arrival order
(the sealed ones first, then the raw records appended after), last write wins per
timestamp by dict, sorted.  The twin of the block layout is ``slow_unseal``, which
walks the header and block field by field with ``struct`` and builds regular
timestamps in a Python loop; pcodec's own bytes are checked by round trip only
(bit-exact values) and by damage (every damaged block is refused).
"""

from __future__ import annotations

import math
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pcodec import standalone

from skyline.store.codec import (
    ChunkRow,
    decode,
    encode,
    header,
    records_many,
    span,
    to_series,
    to_series_many,
)
from skyline.store.sealed import HEADER_SIZE, MAGIC, CorruptSeries, is_sealed, read_header, seal


def slow_series(points: list[tuple[int, float]]) -> tuple[list[int], list[int]]:
    """Timestamps and the values' float64 bit patterns, last write wins, sorted."""
    latest: dict[int, float] = {}
    for t, v in points:
        latest[t] = v
    ts = sorted(t for t, v in latest.items() if math.isfinite(v))
    return ts, [struct.unpack("<q", struct.pack("<d", latest[t]))[0] for t in ts]


def slow_unseal(buf: bytes) -> tuple[int, list[int], list[float]]:
    """Rewrites, timestamps and values of a sealed value's block, field by field."""
    zero, magic, rewrites, size, first, last = struct.unpack("<I4sIIII", buf[:24])
    assert zero == 0 and magic == b"SKZ1"
    if size == 0:
        return rewrites, [], []
    block = buf[24 : 24 + size]
    crc, n, kind, a, b = struct.unpack("<IIBII", block[:17])
    assert crc == zlib.crc32(block[4:])
    if kind == 0:
        ts = [a + b * i for i in range(n)]
        values = block[17:]
    else:
        ts = standalone.simple_decompress(block[17 : 17 + b]).tolist()
        values = block[17 + b :]
    vs = standalone.simple_decompress(values).tolist()
    assert len(ts) == len(vs) == n and ts[0] == first and ts[-1] == last
    return rewrites, ts, vs


def bits(v: np.ndarray) -> list[int]:
    return np.asarray(v, np.float64).view(np.int64).tolist()


def sealed_then(sealed: list[tuple[int, float]], tail: list[tuple[int, float]],
                rewrites: int = 3) -> bytes:  # fmt: skip
    """A stored value: ``sealed`` (sorted, unique) in a block, ``tail`` appended raw."""
    t = np.array([p[0] for p in sealed], np.int64)
    v = np.array([p[1] for p in sealed], np.float64)
    body = seal(t, v, rewrites)
    if tail:
        body += encode([p[0] for p in tail], [p[1] for p in tail])
    return body


def check(sealed: list[tuple[int, float]], tail: list[tuple[int, float]]) -> None:
    buf = sealed_then(sealed, tail)
    got = to_series(buf)
    want_t, want_bits = slow_series(sealed + tail)
    assert got.timestamps.tolist() == want_t and bits(got.values) == want_bits
    assert got.timestamps.dtype == np.int64 and got.values.dtype == np.float64
    rec, rewrites = decode(buf)
    assert rewrites == 3 and rec["t"].tolist() == [p[0] for p in sealed + tail]
    assert bits(rec["v"]) == bits(np.array([p[1] for p in sealed + tail], np.float64))
    rw, ts, vs = slow_unseal(buf)
    assert (
        rw == 3
        and ts == [p[0] for p in sealed]
        and bits(np.array(vs)) == bits(np.array([p[1] for p in sealed], np.float64))
    )


REGULAR = [(1_800_000_000 + 60 * i, round(50 + 10 * math.sin(i / 7), 2)) for i in range(300)]
HAND_PICKED = [
    ([], []),
    ([(100, 1.0)], []),
    ([], [(100, 1.0)]),  # a rewrite that kept nothing, then an append
    ([(100, 1.0), (200, 2.0)], []),
    (REGULAR, []),
    (REGULAR, [(REGULAR[-1][0] + 60, 7.25)]),
    (REGULAR, [(REGULAR[5][0], -1.0)]),  # a late correction of a sealed point wins
    (REGULAR, [(REGULAR[-1][0] + 60, 1.0), (REGULAR[-1][0] + 60, 2.0)]),  # duplicate
    (REGULAR, [(REGULAR[-1][0] + 120, 1.0), (REGULAR[-1][0] + 60, 2.0)]),  # out of order
    ([(1, 1e308), (2, -1e308), (3, 5e-324), (2**32 - 1, -0.0)], []),  # extremes, irregular
    ([(10, 0.1 + 0.2), (20, -0.0), (30, 0.0), (40, -123456.789)], [(25, 3.0)]),
    ([(t, float(2**53 + t)) for t in range(1, 100)], []),  # huge integers: no decimal trick
    ([(t * 60 + (t % 3), 1.5 * t) for t in range(1, 500)], []),  # jittered timestamps
    ([(t, -float(t) / 7) for t in range(1, 50)], [(0 + 50, float("nan"))]),  # non-finite raw
    (REGULAR[:100], [(REGULAR[99][0] + 60 * i, float(i)) for i in range(1, 41)]),  # long tail
    (REGULAR[:100], [(REGULAR[99][0] + 60 * i, float(i % 7)) for i in range(40, 0, -1)]),
]


@pytest.mark.parametrize("sealed,tail", HAND_PICKED)
def test_sealed_series_match_the_twin_on_hand_picked(sealed, tail):
    check(sealed, tail)


def check_many(cases: list[tuple[list[tuple[int, float]], list[tuple[int, float]]]]) -> None:
    """``to_series_many`` of the cases' values in one call (sealed ones of one length
    share an arena) equals the twin case by case; clean ones are rows of an arena."""
    bufs = [sealed_then(sealed, tail) for sealed, tail in cases]
    errors: list[tuple[int, str]] = []
    got = to_series_many(bufs, errors=errors)
    assert errors == []
    for g, (sealed, tail) in zip(got, cases, strict=True):
        want_t, want_bits = slow_series(sealed + tail)
        assert g.timestamps.tolist() == want_t and bits(g.values) == want_bits
        assert g.timestamps.dtype == np.int64 and g.values.dtype == np.float64
        if type(g) is ChunkRow:
            assert g.arena.shape == (2, g.arena.shape[1], len(want_t))
            assert g.arena[0, g.row].tolist() == want_t


def test_many_sealed_series_at_once_match_the_twin_on_hand_picked():
    check_many(HAND_PICKED + HAND_PICKED[::-1] + HAND_PICKED[4:9])
    lengths = [len(to_series(sealed_then(*c))) for c in HAND_PICKED]
    assert len(set(lengths)) < len(lengths)  # some share an arena with a dirty neighbour


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 40),  # sealed points of a regular series
            st.lists(st.tuples(st.integers(-3, 3), st.floats()), max_size=4),  # tail
        ),
        min_size=1,
        max_size=12,
    )
)
def test_many_sealed_series_at_once_match_the_twin_on_random(specs):
    """A few lengths, tails that continue the block, repeat or precede its points,
    or are not finite: each series as the twin reads it."""
    cases = []
    for n, tail in specs:
        sealed = [(1000 + 60 * i, float(i % 5)) for i in range(n)]
        end = 1000 + 60 * n
        cases.append((sealed, [(end + 60 * step, v) for step, v in tail if end + 60 * step > 0]))
    check_many(cases)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.integers(1, 2**32 - 1), st.floats(allow_nan=False, allow_infinity=False), max_size=60
    ),  # fmt: skip
    st.lists(st.tuples(st.integers(1, 2**32 - 1), st.floats(allow_nan=False)), max_size=20),
)
def test_sealed_series_match_the_twin_on_random(points, tail):
    check(sorted(points.items()), tail)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 2**31), st.integers(1, 3600), st.integers(1, 2000), st.integers(0, 6))
def test_regular_series_of_any_step_and_decimals(start, step, n, decimals):
    rng = np.random.default_rng(n)
    values = np.round(rng.normal(1000, 300, n), decimals)
    check([(start + step * i, float(v)) for i, v in enumerate(values)], [])


def test_realistic_series_seal_small():
    """A 1,440-point gauge with two decimals and a counter: well under 4 bytes a point."""
    rng = np.random.default_rng(7)
    t = 1_800_000_000 + 60 * np.arange(1440, dtype=np.int64)
    gauge = np.round(40 + 5 * np.sin(np.arange(1440) / 229) + rng.normal(0, 1, 1440), 2)
    counter = np.cumsum(rng.poisson(300, 1440)).astype(np.float64)
    for v in (gauge, counter):
        assert len(seal(t, v, 1)) / 1440 < 4


def test_seal_refuses_what_it_cannot_store():
    with pytest.raises(ValueError, match="strictly increasing"):
        seal(np.array([2, 1]), np.array([1.0, 2.0]), 0)
    with pytest.raises(ValueError, match="strictly increasing"):
        seal(np.array([5, 5]), np.array([1.0, 2.0]), 0)
    with pytest.raises(ValueError, match="strictly increasing"):
        seal(np.array([0, 1]), np.array([1.0, 2.0]), 0)
    with pytest.raises(ValueError, match="2 timestamps but 1 values"):
        seal(np.array([1, 2]), np.array([1.0]), 0)


def test_old_format_is_still_read_and_told_apart():
    old = header(7) + encode([100, 200], [1.0, 2.0])
    assert not is_sealed(old) and decode(old)[1] == 7
    assert to_series(old).timestamps.tolist() == [100, 200]
    new = seal(np.array([100, 200]), np.array([1.0, 2.0]), 7)
    assert is_sealed(new) and read_header(new).rewrites == 7 and len(new[:HEADER_SIZE]) == 24
    assert new[4:8] == MAGIC and old[4:8] == b"\0\0\0\0"


def test_span_reads_first_and_last_from_the_ends():
    new = seal(np.array([100, 200, 300]), np.array([1.0, 2.0, 3.0]), 1)
    assert span(new[:24], new[-12:], len(new)) == (100, 300)  # no raw record: header's last
    grown = new + encode([250], [9.0])  # a late point, last in arrival order
    assert span(grown[:24], grown[-12:], len(grown)) == (100, 250)
    empty = seal(np.array([], np.int64), np.array([]), 2) + encode([500], [1.0])
    assert span(empty[:24], empty[-12:], len(empty)) == (None, 500)
    old = header(1) + encode([100, 200], [1.0, 2.0])
    assert span(old[:24], old[-12:], len(old)) == (100, 200)
    assert span(header(1), header(1), 12) == (None, None)
    assert span(b"", b"", 0) == (None, None)


def test_every_truncation_and_damage_is_an_error_or_a_series_never_a_crash():
    t = 1_800_000_000 + 60 * np.arange(200, dtype=np.int64)
    t[50:] += 7  # irregular: the timestamps are compressed too
    v = np.round(np.random.default_rng(3).normal(10, 2, 200), 3)
    buf = seal(t, v, 4) + encode([t[-1] + 60], [1.0])
    end = read_header(buf).end
    for cut in range(len(buf)):
        short = buf[:cut]
        if cut < end and is_sealed(short):
            with pytest.raises(CorruptSeries):
                to_series(short)
        else:
            to_series(short)  # the old format, or whole records after the block
    rng = np.random.default_rng(5)
    for _ in range(500):  # damage inside the block: the CRC refuses it
        bad = bytearray(buf)
        pos = int(rng.integers(HEADER_SIZE, end))
        bad[pos] ^= int(rng.integers(1, 256))
        with pytest.raises(CorruptSeries):
            to_series(bytes(bad))
    damaged = []
    for _ in range(500):  # damage anywhere: an error or some series, nothing else
        bad = bytearray(buf)
        for pos in rng.integers(0, len(buf), 3).tolist():
            bad[pos] = int(rng.integers(0, 256))
        damaged.append(bytes(bad))
        try:
            to_series(bytes(bad))
        except CorruptSeries:
            pass
    regular = seal(1_800_000_000 + 60 * np.arange(120, dtype=np.int64), v[:120], 2)
    one = seal(t[:1], v[:1], 1) + encode([t[1]], [2.0])
    for many in (damaged + [buf], [buf[:cut] for cut in range(len(buf))],
                 [regular[:cut] for cut in range(len(regular))] + [one[:c] for c in range(len(one))]):  # fmt: skip
        assert_many_equal_one_by_one(many)


def assert_many_equal_one_by_one(bufs: list[bytes]) -> None:
    """``to_series_many`` refuses the values ``to_series`` refuses, with the same
    reason, and reads the same series from the others."""
    errors: list[tuple[int, str]] = []  # all at once: the same errors and series
    got = to_series_many(bufs, errors=errors)
    refused = dict(errors)
    assert len(refused) == len(errors)
    for i, bad in enumerate(bufs):
        try:
            want = to_series(bad)
        except CorruptSeries as exc:
            assert refused.get(i) == str(exc) and len(got[i]) == 0
            continue
        assert i not in refused and got[i].timestamps.tolist() == want.timestamps.tolist()
        assert bits(got[i].values) == bits(want.values)


def test_to_series_many_mixes_formats_and_reports_damage():
    sealed = seal(np.array([100, 200]), np.array([1.0, 2.0]), 1) + encode([300], [3.0])
    old = header(2) + encode([100, 200], [5.0, 6.0])
    damaged = sealed[:30] + bytes(len(sealed) - 30)
    bufs = [sealed, old, None, damaged, b"", encode([1], [1.0])]
    errors: list[tuple[int, str]] = []
    got = to_series_many(bufs, errors=errors)
    assert [i for i, _ in errors] == [3] and "CRC" in errors[0][1]
    for i, b in enumerate(bufs):
        want = to_series(b) if i != 3 else to_series(None)
        assert got[i].timestamps.tolist() == want.timestamps.tolist()
        assert bits(got[i].values) == bits(want.values)
    with pytest.raises(CorruptSeries):
        to_series_many([damaged])
    assert [len(s) for s in records_many([old, None])] == [2, 0]


def reblock(buf: bytes, **fields: int) -> bytes:
    """``buf`` with fields of its header (``block``, ``first``, ``last``) or of its
    block's header (``n``, ``kind``, ``a``, ``b``) changed, the block's CRC made right
    again (the raw records after the block kept)."""
    zero, magic, rewrites, size, first, last = struct.unpack_from("<I4sIIII", buf)
    _, n, kind, a, b = struct.unpack_from("<IIBII", buf, HEADER_SIZE)
    head = {"block": size, "first": first, "last": last}
    blk = {"n": n, "kind": kind, "a": a, "b": b}
    head.update((k, x) for k, x in fields.items() if k in head)
    blk.update((k, x) for k, x in fields.items() if k in blk)
    end = HEADER_SIZE + size
    rest = struct.pack("<IBII", *blk.values()) + buf[HEADER_SIZE + 17 : end]
    out = struct.pack("<I4sIIII", zero, magic, rewrites, *head.values())
    return out + struct.pack("<I", zlib.crc32(rest)) + rest + buf[end:]


def test_many_refuse_damaged_headers_as_one_by_one_does():
    """Damage the CRC cannot see (the header) or made to pass it: each refusal of
    ``to_series`` (size, claims, kind, first/last of a regular and of a compressed
    block) happens in ``to_series_many`` too, for the same reason."""
    t = 1_800_000_000 + 60 * np.arange(300, dtype=np.int64)
    v = np.random.default_rng(9).normal(size=300)
    regular = seal(t, v, 3)
    jittered = t.copy()
    jittered[7] += 5
    compressed = seal(jittered, v, 3) + encode([t[-1] + 60], [1.0])
    one = seal(t[:1], v[:1], 1)
    cases = [regular, compressed, one]
    for buf in (regular, compressed, one):
        h = read_header(buf)
        cases += [
            reblock(buf, last=h.last + 60),
            reblock(buf, first=h.first - 60),
            reblock(buf, block=10),  # shorter than a block header
            reblock(buf, n=(1 << 24) + 1),
            reblock(buf, kind=7),
            reblock(buf, b=0),
            reblock(buf, b=120),
        ]
    assert_many_equal_one_by_one(cases)
    errors: list[tuple[int, str]] = []
    to_series_many(cases, errors=errors)
    reasons = " ".join(why for _, why in errors)
    for part in ("bytes in a", "claims", "timestamp kind", "first/last"):
        assert part in reasons
