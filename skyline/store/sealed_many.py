"""Many sealed blocks at once: their headers read and checked as arrays.

``unseal`` reads one header and block with ``struct`` and checks them one at a time,
which costs several microseconds of Python per series.  ``SealedHeads.of`` takes the
first 41 bytes of every value (header and block header) in one join, views them as
one structured array, and makes every check of ``check_block`` and ``unseal_into``
on arrays; only the CRC and the pcodec calls stay per series (``decode_rows``).  A
value is refused exactly when ``to_series`` would refuse it, with the same reason
(tested on every truncation and on random damage, ``tests/unit/test_sealed.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from isal.isal_zlib import crc32

from skyline.store.sealed import (
    BLOCK,
    COMPRESSED,
    HEADER_SIZE,
    MAX_POINTS,
    REGULAR,
    CorruptSeries,
    decompress,
)

__all__ = ["SealedHeads", "decode_rows"]

# the header and the block's header, packed (numpy does not align a dtype built so)
HEADS = np.dtype([("zero", "<u4"), ("magic", "S4"), ("rewrites", "<u4"), ("block", "<u4"),
                  ("first", "<u4"), ("last", "<u4"), ("crc", "<u4"), ("n", "<u4"),
                  ("kind", "u1"), ("a", "<u4"), ("b", "<u4")])  # fmt: skip
SIZE = HEADS.itemsize  # 41 = HEADER_SIZE + BLOCK.size


@dataclass
class SealedHeads:
    """What the headers of sealed values say, one entry per value: ``n`` points in the
    block (0 when refused), ``records`` raw records after it, whether the block's
    timestamps are ``regular`` (``a + step * i``), where its ``values`` start and end,
    and ``error``: the reason a value is refused (None when it is not, so far)."""

    n: np.ndarray
    records: np.ndarray
    regular: np.ndarray
    a: np.ndarray
    step: np.ndarray
    first: np.ndarray
    last: np.ndarray
    values: np.ndarray
    end: np.ndarray
    b: np.ndarray
    error: list[str | None]

    @classmethod
    def of(cls, bufs: Sequence[bytes], record_size: int) -> SealedHeads:
        """The heads of sealed values (``is_sealed`` of each must hold), checked."""
        lens = np.fromiter(map(len, bufs), np.int64, len(bufs))
        h = np.frombuffer(b"".join([b[:SIZE] if len(b) >= SIZE else b.ljust(SIZE, b"\0")
                                    for b in bufs]), HEADS)  # fmt: skip
        block = h["block"].astype(np.int64)
        end = HEADER_SIZE + block
        error: list[str | None] = [None] * len(bufs)
        has = block > 0
        short = has & ((end > lens) | (block < BLOCK.size))
        for i in np.flatnonzero(short).tolist():
            error[i] = f"sealed block of {block[i]} bytes in a {lens[i]}-byte value"
        crc = h["crc"].tolist()
        for i in np.flatnonzero(has & ~short).tolist():
            if crc32(memoryview(bufs[i])[HEADER_SIZE + 4 : end[i]]) != crc[i]:
                error[i] = "sealed block fails its CRC check"
        n = np.where(has, h["n"], 0).astype(np.int64)
        ok = np.fromiter((e is None for e in error), bool, len(bufs))
        for i in np.flatnonzero(ok & (n > MAX_POINTS)).tolist():
            error[i] = f"sealed block claims {n[i]} points"
        kind, a, b = h["kind"], h["a"].astype(np.int64), h["b"].astype(np.int64)
        regular = (kind == REGULAR) & ((b != 0) | (n == 1))
        step = np.where(b != 0, b, 1)
        times = ~regular & (kind == COMPRESSED) & (HEADER_SIZE + BLOCK.size + b <= end)
        late = ok & (n > 0) & (n <= MAX_POINTS)  # checked by unseal_into, in its order
        for i in np.flatnonzero(late & ~regular & ~times).tolist():
            error[i] = f"sealed block has timestamp kind {kind[i]} and {b[i]} bytes"
        first, last = h["first"].astype(np.int64), h["last"].astype(np.int64)
        moved = regular & ((a != first) | (a + step * (n - 1) != last))
        for i in np.flatnonzero(late & moved).tolist():
            error[i] = "sealed block does not match its header's first/last timestamps"
        n[np.fromiter((e is not None for e in error), bool, len(bufs))] = 0
        records = np.maximum(0, lens - end) // record_size
        values = HEADER_SIZE + BLOCK.size + np.where(times, b, 0)
        return cls(n, records, regular, a, step, first, last, values, end, b, error)


def decode_rows(bufs: Sequence[bytes], heads: SealedHeads, members: list[int],
                t2d: np.ndarray, v2d: np.ndarray) -> list[tuple[int, str]]:  # fmt: skip
    """Decode the blocks of values ``members`` (not refused) into rows 0, 1, ... of
    ``t2d`` and ``v2d``, ``heads.n[k]`` points each, except the timestamps of regular
    blocks; ``(row, reason)`` for each damaged one.  The members' heads are taken as
    lists first: indexing the arrays one element at a time cost about 0.8 µs a series
    (docs/performance.md)."""
    at = np.asarray(members, np.int64)
    n_of, end, start, time_bytes = (heads.n[at].tolist(), heads.end[at].tolist(),
                                    heads.values[at].tolist(), heads.b[at].tolist())  # fmt: skip
    regular, first, last = (
        heads.regular[at].tolist(),
        heads.first[at].tolist(),
        heads.last[at].tolist(),
    )
    bad: list[tuple[int, str]] = []
    for row, k in enumerate(members):
        n = n_of[row]
        if not n:
            continue
        buf, values = bufs[k], start[row]
        try:
            if not regular[row]:
                t = t2d[row, :n]
                decompress(buf[values - time_bytes[row] : values], t)
                if t[0] != first[row] or t[n - 1] != last[row]:
                    bad.append(
                        (row, "sealed block does not match its header's first/last timestamps")
                    )
                    continue
            decompress(buf[values : end[row]], v2d[row, :n])
        except CorruptSeries as exc:
            bad.append((row, str(exc)))
    return bad
