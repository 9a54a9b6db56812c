"""Sealed blocks: the older part of a series, sorted, de-duplicated and compressed.

Roomba's rewrite (``TimeSeriesStore.trim_many``) turns a series into one sealed
block followed by the raw 12-byte records writers append afterwards
(``skyline.store.codec``).  A sealed series starts with a 24-byte header::

    <u4 0> <4s b"SKZ1"> <u4 rewrites> <u4 block length> <u4 first t> <u4 last t>

Timestamp 0 is never a datapoint, so the old format's header record
``(0, float64 rewrites)`` and this one both start with four zero bytes; the old
one's next four bytes are the low half of a small float64 integer, always zero,
never the magic.  The rewrite count makes every rewrite change the first 24 bytes,
which incremental readers compare (``Cursor.head``).  The first and last
timestamps let roomba decide from the header alone whether a series is due.

The block (``block length`` bytes, none for an empty series)::

    <u4 crc32 of the rest> <u4 n> <u1 kind> <u4 a> <u4 b> [timestamps] values

kind 0: timestamps ``a + b * i`` (a regular series: nothing stored); kind 1:
``b`` bytes of pcodec-compressed int64 timestamps follow.  The values are a
pcodec standalone file of float64.  pcodec was chosen by benchmark
(docs/storage.md): the smallest and the fastest to decode of the candidates.
Everything read back is checked (CRC, lengths, order), so damaged bytes give
``CorruptSeries``, never wrong data or a crash.
"""

from __future__ import annotations

import functools
import struct
from typing import NamedTuple

import numpy as np
from isal.isal_zlib import crc32
from pcodec import ChunkConfig, standalone

MAGIC = b"SKZ1"
HEADER = struct.Struct("<I4sIIII")
HEADER_SIZE = HEADER.size  # 24
BLOCK = struct.Struct("<IIBII")
REGULAR, COMPRESSED = 0, 1
MAX_POINTS = 1 << 24  # more in one series is damage (roomba rewrites beyond 4 MiB)
LEVEL = 4  # pcodec compression level: 4 and 8 differ by 1.5 % in size, 2.7x in time


class CorruptSeries(ValueError):
    """Stored series bytes that cannot be decoded; the message says what is wrong."""


class Header(NamedTuple):
    rewrites: int
    block: int  # bytes of the sealed block after the header
    first: int  # first and last timestamp of the block (0 when empty)
    last: int

    @property
    def end(self) -> int:
        """Offset of the first raw record after the block."""
        return HEADER_SIZE + self.block


def is_sealed(buf: bytes) -> bool:
    return len(buf) >= HEADER_SIZE and buf[:4] == b"\0\0\0\0" and buf[4:8] == MAGIC


def read_header(buf: bytes) -> Header:
    """The header of a sealed series (``is_sealed(buf)`` must hold)."""
    _, _, rewrites, block, first, last = HEADER.unpack_from(buf)
    return Header(rewrites, block, first, last)


def _config() -> ChunkConfig:
    return ChunkConfig(compression_level=LEVEL)


def seal(t: np.ndarray, v: np.ndarray, rewrites: int) -> bytes:
    """Header and block for a prepared series: int64 timestamps, strictly increasing,
    in ``[1, 2**32)``, and finite float64 values."""
    n = len(t)
    if n != len(v):
        raise ValueError(f"{n} timestamps but {len(v)} values")
    if not n:
        return HEADER.pack(0, MAGIC, rewrites, 0, 0, 0)
    if n > MAX_POINTS:
        raise ValueError(f"{n} points: at most {MAX_POINTS} fit one sealed block")
    t = np.ascontiguousarray(t, np.int64)
    if t[0] < 1 or t[-1] >= 1 << 32 or (n > 1 and not (t[1:] > t[:-1]).all()):
        raise ValueError("timestamps must be strictly increasing and in [1, 2**32)")
    step = int(t[1] - t[0]) if n > 1 else 0
    times: bytes
    if n < 3 or (np.diff(t) == step).all():
        head, times = (REGULAR, int(t[0]), step), b""
    else:
        times = standalone.simple_compress(t, _config())
        head = (COMPRESSED, 0, len(times))
    values: bytes = standalone.simple_compress(np.ascontiguousarray(v, np.float64), _config())
    rest = BLOCK.pack(0, n, *head)[4:] + times + values
    block = struct.pack("<I", crc32(rest)) + rest
    return HEADER.pack(0, MAGIC, rewrites, len(block), int(t[0]), int(t[-1])) + block


def unseal(buf: bytes, header: Header, extra: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The block's int64 timestamps and float64 values, in arrays with room for
    ``extra`` more points after them (left uninitialised)."""
    n = check_block(buf, header)
    t, v = np.empty(n + extra, np.int64), np.empty(n + extra, np.float64)
    if n:
        unseal_into(buf, header, t[:n], v[:n])
    return t, v


def check_block(buf: bytes, header: Header) -> int:
    """The number of points in the sealed block of ``buf`` (0 for an empty block),
    after checking its size and CRC; ``CorruptSeries`` when they are wrong."""
    if not header.block:
        return 0
    end = HEADER_SIZE + header.block
    if end > len(buf) or header.block < BLOCK.size:
        raise CorruptSeries(f"sealed block of {header.block} bytes in a {len(buf)}-byte value")
    crc, n = BLOCK.unpack_from(buf, HEADER_SIZE)[:2]
    if crc32(memoryview(buf)[HEADER_SIZE + 4 : end]) != crc:
        raise CorruptSeries("sealed block fails its CRC check")
    if n > MAX_POINTS:
        raise CorruptSeries(f"sealed block claims {n} points")
    return int(n)


def unseal_into(buf: bytes, header: Header, t: np.ndarray, v: np.ndarray,
                times: bool = True) -> tuple[int, int] | None:  # fmt: skip
    """Decode a block that ``check_block`` passed, of ``len(v)`` points, into ``t``
    (int64) and ``v`` (float64), contiguous arrays of the caller's.  With ``times``
    False the timestamps of a regular block are not written: its ``(first, step)``
    is returned for the caller to fill many rows at once (None when ``t`` was
    written)."""
    end = HEADER_SIZE + header.block
    _, n, kind, a, b = BLOCK.unpack_from(buf, HEADER_SIZE)
    if n != len(t) or n != len(v):
        raise ValueError(f"a block of {n} points into arrays of {len(t)} and {len(v)}")
    pos = HEADER_SIZE + BLOCK.size
    regular = None
    if kind == REGULAR and (b or n == 1):
        step = b or 1
        if times:
            np.multiply(ramp(n), step, out=t)
            t += a
        else:
            regular = a, step
        first, last = a, a + step * (n - 1)
    elif kind == COMPRESSED and pos + b <= end:
        decompress(buf[pos : pos + b], t)
        pos += b
        first, last = int(t[0]), int(t[n - 1])
    else:
        raise CorruptSeries(f"sealed block has timestamp kind {kind} and {b} bytes")
    if first != header.first or last != header.last:
        raise CorruptSeries("sealed block does not match its header's first/last timestamps")
    decompress(buf[pos:end], v)
    return regular


@functools.lru_cache(maxsize=64)
def ramp(n: int) -> np.ndarray:
    """0, 1, ..., n - 1 as int64, read-only (series of a few lengths share them)."""
    ramp = np.arange(n, dtype=np.int64)
    ramp.setflags(write=False)
    return ramp


def decompress(data: bytes, out: np.ndarray) -> None:
    """Fill ``out`` (a contiguous slice) with exactly its length of values."""
    try:
        progress = standalone.simple_decompress_into(data, out)
    except (RuntimeError, TypeError) as exc:
        raise CorruptSeries(f"sealed block: {exc}") from exc
    if progress.n_processed != len(out) or not progress.finished:
        raise CorruptSeries(f"sealed block holds other than {len(out)} values")
