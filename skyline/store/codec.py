"""The series format: a sealed block, then 12-byte records ``<uint32 t, float64 v>``.

Encoding and decoding of one metric's Redis string (see ``skyline.store.timeseries`` for
the store that keeps them, and docs/storage.md for why this format).  Writers append
raw records; roomba's rewrite compresses everything it keeps into a sealed block at
the front (``skyline.store.sealed``).  Series written before sealed blocks existed
(records only, perhaps led by the old header record ``(0, rewrites)``) are read the
same way and sealed by their next rewrite.  Here: ``encode`` / ``decode``,
``prepare`` (sort, de-duplicate with the last write winning, drop non-finite values),
``span`` (first and last timestamp from a series' ends), and the bulk decoders that
turn a whole MGET chunk into one block of rows.  No Redis here.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import NamedTuple, cast

import numpy as np

from skyline.compiled import jit
from skyline.store.sealed import (
    CorruptSeries,
    is_sealed,
    read_header,
    unseal,
)
from skyline.store.sealed_many import SealedHeads, decode_rows

RECORD = np.dtype([("t", "<u4"), ("v", "<f8")])
RECORD_SIZE = RECORD.itemsize  # 12
HEAD_SIZE = 2 * RECORD_SIZE
ARENA_ROWS = 4096  # series per DecodeArena of read_many


class Series(NamedTuple):
    """A prepared series: timestamps (int64, strictly increasing) and values (float64)."""

    timestamps: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.timestamps)

    @classmethod
    def empty(cls) -> Series:
        return cls(np.empty(0, np.int64), np.empty(0, np.float64))

    def pairs(self) -> list[list[float]]:
        return [[int(t), float(v)] for t, v in zip(self.timestamps, self.values, strict=True)]


class ChunkRow(Series):
    """A clean ``Series`` decoded into row ``row`` of ``arena``, a ``(2, rows, n)``
    int64 array holding timestamps in ``[0]`` and the values' float64 bits in ``[1]``
    (the series' arrays are views of that row).  An analysis takes the rows of one
    arena as one block instead of stacking copies of them."""

    row: int
    arena: np.ndarray

    @classmethod
    def of(cls, arena: np.ndarray, row: int) -> ChunkRow:
        s = cls(arena[0, row], arena[1, row].view(np.float64))
        s.row, s.arena = row, arena
        return s

    @classmethod
    def all_of(cls, arena: np.ndarray) -> list[ChunkRow]:
        """``[ChunkRow.of(arena, row) for row in range(rows)]``, built in bulk (a
        per-row index and view cost about a microsecond a series)."""
        rows: list[ChunkRow] = []
        new = tuple.__new__
        for row, pair in enumerate(zip(arena[0], arena[1].view(np.float64), strict=True)):
            s = new(cls, pair)
            s.row, s.arena = row, arena
            rows.append(s)
        return rows


class DecodeArena:
    """Room for the decoded series of one read: one large allocation (so the kernel
    backs it with huge pages: first-touch page faults on many 2 MB arrays cost more
    than the decoding) holding up to ``rows`` series of one length."""

    def __init__(self, rows: int) -> None:
        self.rows, self.used = rows, 0
        self.buf: np.ndarray | None = None

    def take(self, m: int, n: int) -> tuple[np.ndarray, int]:
        """An arena for ``m`` series of ``n`` points, and the first row that is theirs."""
        if self.buf is None or self.buf.shape[2] != n or self.used + m > self.buf.shape[1]:
            self.buf, self.used = np.empty((2, max(self.rows, m), n), np.int64), 0
        self.used += m
        return self.buf, self.used - m


def encode(timestamps: Sequence[float] | np.ndarray, values: Sequence[float] | np.ndarray) -> bytes:
    rec = np.empty(len(timestamps), RECORD)
    rec["t"] = timestamps
    rec["v"] = values
    return rec.tobytes()


_STRUCTS: dict[int, struct.Struct] = {}


def encode_small(timestamps: list[float], values: list[float]) -> bytes:
    """``encode`` for the few points per metric of an ingest batch (struct is faster
    than numpy below a few dozen points)."""
    n = len(timestamps)
    if n > 32:
        return encode(timestamps, values)
    packer = _STRUCTS.get(n)
    if packer is None:
        packer = _STRUCTS[n] = struct.Struct("<" + "Id" * n)
    if n == 1:
        return packer.pack(int(timestamps[0]), values[0])
    flat: list[float] = []
    for t, v in zip(timestamps, values, strict=True):
        flat += (int(t), v)
    return packer.pack(*flat)


def header(rewrites: int) -> bytes:
    """The old format's header record (series written before sealed blocks)."""
    return encode([0], [float(rewrites)])


def records(buf: bytes | memoryview, start: int = 0) -> np.ndarray:
    """The whole records of ``buf`` from ``start`` on (a trailing partial record, only
    possible if something else wrote the key, is ignored)."""
    count = max(0, len(buf) - start) // RECORD_SIZE
    return np.frombuffer(buf, RECORD, count=count, offset=start) if count else _NO_RECORDS


_NO_RECORDS = np.empty(0, RECORD)


def decode(buf: bytes) -> tuple[np.ndarray, int]:
    """Raw records (arrival order, header removed; a sealed block's points first, as
    records) and the rewrite count.  ``CorruptSeries`` for a damaged sealed block."""
    if is_sealed(buf):
        head = read_header(buf)
        t, v = unseal(buf, head)
        tail = records(buf, head.end)
        rec = np.empty(len(t) + len(tail), RECORD)
        rec["t"][: len(t)], rec["v"][: len(t)] = t, v
        rec[len(t) :] = tail
        return rec, head.rewrites
    rec = records(buf)
    if len(rec) and rec["t"][0] == 0:
        return rec[1:], int(rec["v"][0])
    return rec, 0


def span(head: bytes, last: bytes, size: int) -> tuple[int | None, int | None]:
    """The first and the last (in arrival order) timestamps of a series from its
    first ``HEAD_SIZE`` bytes, its last ``RECORD_SIZE`` bytes and its length; None
    where the ends cannot tell (a series with no point, or a sealed one with an empty
    block, whose first point is in its raw records)."""
    if is_sealed(head):
        h = read_header(head)
        newest = _last_t(last) if size - h.end >= RECORD_SIZE else (h.last or None)
        return (h.first or None), newest
    rec, _ = decode(head)
    return (int(rec["t"][0]) if len(rec) else None), _last_t(last)


def _last_t(last: bytes) -> int | None:
    """The timestamp of a series' last record (None: none, or the old header)."""
    if len(last) != RECORD_SIZE:
        return None
    return int(np.frombuffer(last, RECORD)["t"][0]) or None


def prepare(rec: np.ndarray) -> Series:
    """Sort by timestamp, keep the last-written value of each timestamp, drop non-finite."""
    return sort_dedupe(rec["t"].astype(np.int64), rec["v"].astype(np.float64))


def sort_dedupe(t: np.ndarray, v: np.ndarray) -> Series:
    """``prepare`` on int64 timestamps and float64 values in arrival order."""
    if len(t) > 1 and not (np.all(t[1:] > t[:-1])):
        order = np.argsort(t, kind="stable")
        t, v = t[order], v[order]
        last = np.empty(len(t), bool)
        last[:-1] = t[1:] != t[:-1]
        last[-1] = True
        t, v = t[last], v[last]
    finite = np.isfinite(v)
    if not finite.all():
        t, v = t[finite], v[finite]
    return Series(t, v)


def to_series(buf: bytes | None) -> Series:
    """The prepared series of a stored value; ``CorruptSeries`` if it is damaged."""
    if not buf:
        return Series.empty()
    if is_sealed(buf):
        head = read_header(buf)
        m = max(0, len(buf) - head.end) // RECORD_SIZE
        t, v = unseal(buf, head, m)  # sealed from a prepared series: clean
        if m and not _put_tail(buf, head.end, head.last, t, v, m):
            return sort_dedupe(t, v)
        return Series(t, v)
    return prepare(decode(buf)[0])


def _put_tail(buf: bytes, start: int, last: int, t: np.ndarray, v: np.ndarray, m: int) -> bool:
    """Copy the ``m`` raw records at ``start`` into the ends of ``t`` and ``v``; True
    when they continue the sealed block cleanly (each newer than the one before,
    finite).  A few records (the usual tail) are read with ``struct``: cheaper than
    numpy's field views and checks at that size."""
    if m > 32:
        tail = records(buf, start)
        tt, tv = tail["t"], tail["v"]
        t[-m:], v[-m:] = tt, tv
        return bool(tt[0] > last and (tt[1:] > tt[:-1]).all() and np.isfinite(tv).all())
    packer = _STRUCTS.get(m)
    if packer is None:
        packer = _STRUCTS[m] = struct.Struct("<" + "Id" * m)
    flat = packer.unpack_from(buf, start)
    ts, vs = flat[0::2], flat[1::2]
    t[-m:], v[-m:] = ts, vs
    prev = last
    for x in ts:
        if x <= prev:
            return False
        prev = x
    return all(map(math.isfinite, vs))


def to_series_many(
    bufs: Sequence[bytes | None],
    arena: DecodeArena | None = None,
    errors: list[tuple[int, str]] | None = None,
) -> list[Series]:
    """``to_series`` for many values: sealed ones with ``unseal_many``, the others
    with ``records_many``.  A damaged sealed value becomes an empty series, its
    position and the reason appended to ``errors`` (raised when ``errors`` is None)."""
    sealed = [i for i, b in enumerate(bufs) if b and is_sealed(b)]
    if not sealed:
        return records_many(bufs, arena)
    rest = list(bufs)
    for i in sealed:
        rest[i] = None
    out = records_many(rest, arena) if len(sealed) < len(bufs) else [Series.empty()] * len(bufs)
    bad: list[tuple[int, str]] = []
    for i, s in zip(sealed, unseal_many([cast(bytes, bufs[i]) for i in sealed], bad), strict=True):
        out[i] = s
    if bad and errors is None:
        raise CorruptSeries(bad[0][1])
    if errors is not None:
        errors += [(sealed[k], why) for k, why in bad]
    return out


def unseal_many(bufs: Sequence[bytes], errors: list[tuple[int, str]]) -> list[Series]:
    """``to_series`` of sealed values, decoded into one arena per series length: the
    clean ones (nearly all: a sealed block is clean, and so is a tail that continues
    it in order) are ``ChunkRow`` rows, which an analysis takes as blocks without
    stacking copies.  The headers are read and checked as arrays
    (``SealedHeads``), the raw tails of an arena's rows copied and checked with a
    few numpy calls for all of them.  A damaged value becomes an empty series and
    ``(position, reason)`` in ``errors``."""
    out: list[Series] = [Series.empty()] * len(bufs)
    heads = SealedHeads.of(bufs, RECORD_SIZE)
    bad = [(k, why) for k, why in enumerate(heads.error) if why is not None]
    width = heads.n + heads.records
    by_len: dict[int, list[int]] = {}
    widths = width.tolist()
    for k in np.flatnonzero(width > 0).tolist():
        if heads.error[k] is None:
            by_len.setdefault(widths[k], []).append(k)
    # one allocation for every arena: numpy asks for huge pages for a large one, and
    # first-touch faults on a dozen 2 MB arrays cost more than the decoding
    room = np.empty(sum(2 * len(members) * length for length, members in by_len.items()),
                    np.int64)  # fmt: skip
    used = 0
    n_of, ends = heads.n.tolist(), heads.end.tolist()
    regular, first, step = heads.regular, heads.a, heads.step
    for length, members in by_len.items():
        size = 2 * len(members) * length
        arena = room[used : used + size].reshape(2, len(members), length)
        used += size
        t2d, v2d = arena[0], arena[1].view(np.float64)
        state = [1] * len(members)  # 1 clean, 0 to sort, -1 damaged
        for row, why in decode_rows(bufs, heads, members, t2d, v2d):
            bad.append((members[row], why))
            state[row] = -1
        idx = np.array(members)
        fill = np.flatnonzero(regular[idx] & (heads.n[idx] > 0))
        if len(fill):  # first + step * i, the tails' places too (overwritten next)
            _fill_regular(t2d, np.stack([fill, first[idx[fill]], step[idx[fill]]], axis=1))
        tails = [(row, k, ends[k], n_of[k]) for row, k in enumerate(members)
                 if n_of[k] < length and state[row] == 1]  # fmt: skip
        for row in _put_tails(bufs, tails, t2d, v2d).tolist() if tails else ():
            state[row] = 0
        for k, how, cr in zip(members, state, ChunkRow.all_of(arena), strict=True):
            if how == 1:
                out[k] = cr
            elif how == 0:  # a tail out of order, repeating a timestamp or not finite
                out[k] = sort_dedupe(cr.timestamps.copy(), cr.values.copy())
    errors += sorted(bad)
    return out


def _fill_regular(t2d: np.ndarray, regular: np.ndarray) -> None:
    """Rows ``regular[:, 0]`` of ``t2d`` get ``first + step * i`` (``regular[:, 1:]``),
    written in one compiled pass: numpy's in-place multiply and add pass over the
    arena twice, and an arena is larger than the caches (docs/performance.md,
    "Compiled kernels and vectorised headers")."""
    _ramp_rows(t2d, np.ascontiguousarray(regular, np.int64))


@jit
def _ramp_rows(t2d: np.ndarray, regular: np.ndarray) -> None:
    for k in range(len(regular)):
        row, first, step = regular[k, 0], regular[k, 1], regular[k, 2]
        out = t2d[row]
        for i in range(t2d.shape[1]):
            out[i] = first + step * i


def _put_tails(bufs: Sequence[bytes], tails: list[tuple[int, int, int, int]],
               t2d: np.ndarray, v2d: np.ndarray) -> np.ndarray:  # fmt: skip
    """Copy the raw records of each ``(row, buffer, start, points before)`` into the
    end of its row; the rows whose records do not continue the row cleanly (each
    newer than the point before it, finite values)."""
    width = t2d.shape[1]
    rows = np.array([r for r, _, _, _ in tails], np.int64)
    before = np.array([n for _, _, _, n in tails], np.int64)
    rec = np.frombuffer(b"".join(bufs[k][a : a + (width - n) * RECORD_SIZE]
                                 for _, k, a, n in tails), RECORD)  # fmt: skip
    counts = width - before
    at = np.repeat(rows, counts)
    col = np.arange(len(rec)) - np.repeat(np.cumsum(counts) - counts - before, counts)
    t2d[at, col], v2d[at, col] = rec["t"], rec["v"]
    prev = np.where(col > 0, t2d[at, col - 1], 0)  # the first point of an empty block: > 0
    bad = (t2d[at, col] <= prev) | ~np.isfinite(v2d[at, col])
    return np.unique(at[bad])


def records_many(bufs: Sequence[bytes | None], arena: DecodeArena | None = None) -> list[Series]:
    """``to_series`` for a chunk of values without a sealed block, with a handful of
    numpy calls.

    One join, one ``frombuffer`` and one ``astype`` per field for the chunk, and the
    order/finiteness checks vectorised; a clean series is two slices (views) of the
    chunk's arrays, and only a series that is unsorted, duplicated or non-finite goes
    through ``prepare``.  Equal to ``[to_series(b) for b in bufs]`` (tested).  When
    every value is the same size (the usual chunk), see ``_uniform_chunk``.
    """
    uniform = _uniform_chunk(bufs, arena)
    if uniform is not None:
        return uniform
    counts = np.fromiter((len(b) // RECORD_SIZE if b else 0 for b in bufs), np.int64, len(bufs))
    parts = [b if len(b) == n * RECORD_SIZE else b[: n * RECORD_SIZE]
             for b, n in zip(bufs, counts.tolist(), strict=True) if n and b]  # fmt: skip
    rec = np.frombuffer(b"".join(parts), RECORD)
    bounds = np.zeros(len(bufs) + 1, np.int64)
    np.cumsum(counts, out=bounds[1:])
    t = rec["t"].astype(np.int64)
    v = rec["v"].astype(np.float64)
    starts = bounds[:-1].copy()
    has = counts > 0
    starts[has] += t[starts[has]] == 0  # skip a header record
    bad = ~np.isfinite(v)
    bad[1:] |= t[1:] <= t[:-1]
    inner = bounds[1:-1]
    inner = inner[inner < len(t)]
    bad[inner] = ~np.isfinite(v[inner])  # order is not compared across two series
    dirty = np.zeros(len(t) + 1, np.int64)
    np.cumsum(bad, out=dirty[1:])
    out = []
    ends = bounds[1:]
    n_bad = (dirty[ends] - dirty[starts]).tolist()
    for a, b, nb in zip(starts.tolist(), ends.tolist(), n_bad, strict=True):
        if a >= b:
            out.append(Series.empty())
        elif nb:
            out.append(prepare(rec[a:b]))
        else:
            out.append(Series(t[a:b], v[a:b]))
    return out


@jit
def _copy_rows(ts: np.ndarray, vs: np.ndarray, t2d: np.ndarray, v2d: np.ndarray, first: int,
               ok: np.ndarray) -> None:  # fmt: skip
    """Row i of ``ts``/``vs`` (timestamps, values) into row ``first + i`` of ``t2d``/``v2d``;
    ``ok[i]``: its timestamps strictly increase and its values are finite.  One pass
    (``tests/unit/test_timeseries_format.py`` has its slow twin)."""
    for i in range(ts.shape[0]):
        out_t, out_v = t2d[first + i], v2d[first + i]
        prev = -1  # below every uint32 timestamp
        good = True
        for j in range(ts.shape[1]):
            x, y = ts[i, j], vs[i, j]
            out_t[j], out_v[j] = x, y
            if x <= prev or not np.isfinite(y):
                good = False
            prev = x
        ok[i] = good


def _uniform_chunk(bufs: Sequence[bytes | None], arena: DecodeArena | None) -> list[Series] | None:
    """``to_series_many`` of values all of one size (whole records, all with a header
    or none), decoded straight into rows of ``arena`` (or of a new one): clean series
    are ``ChunkRow`` views of their rows.  None when the chunk is not like that."""
    size = len(bufs[0] or b"") if len(bufs) > 1 else 0
    if size < RECORD_SIZE or size % RECORD_SIZE or any(len(b or b"") != size for b in bufs):
        return None
    rec = np.frombuffer(b"".join(bufs), RECORD).reshape(len(bufs), size // RECORD_SIZE)  # type: ignore[arg-type]
    headed = rec["t"][:, 0] == 0
    if headed.all():
        rec = rec[:, 1:]
    if headed.any() and not headed.all() or rec.shape[1] == 0:
        return None
    m, n = rec.shape
    buf, first = (arena or DecodeArena(m)).take(m, n)
    ok = np.empty(m, np.bool_)
    _copy_rows(rec["t"], rec["v"], buf[0], buf[1].view(np.float64), first, ok)
    out: list[Series] = []
    for i, good in enumerate(ok.tolist()):
        if good:
            out.append(ChunkRow.of(buf, first + i))
        else:
            out.append(prepare(rec[i]))
    return out
