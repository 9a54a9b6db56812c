"""Fixed-size detector state: named fields in one float64 row per metric.

A vectorised streaming detector keeps the state of M metrics as one ``(M, D)``
float64 array.  ``StateLayout`` names the columns (scalars and fixed-length
windows), so the kernel reads ``layout.view(state, "past")`` instead of column
arithmetic, and so one metric's state is one row: packed into a few kilobytes of
bytes for Redis with a small header (magic, detector name, version, size), and
unpacked back bit for bit.  A row whose header names another detector or an older
version is refused (``None``), and the caller rebuilds it from the stored series.

Float64 throughout: the state round-trips exactly, so a detector restored from
Redis continues exactly as one that never stopped.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MAGIC = b"SKD1"
# magic, detector-name crc32, version, columns, last timestamp learned: the last is
# readable whatever the version, so a state of an older version can be rebuilt up to
# the point it had reached and the points after it judged.
_HEADER = struct.Struct("<4sIIId")
HEADER_SIZE = _HEADER.size  # 24


@dataclass(frozen=True)
class StateLayout:
    """Columns of a detector's state row: ``fields`` is ``[(name, width), ...]``."""

    name: str
    version: int
    fields: tuple[tuple[str, int], ...]
    _slices: dict[str, slice] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        start = 0
        for fname, width in self.fields:
            if width < 1 or fname in self._slices:
                raise ValueError(f"bad state field {fname!r} ({width})")
            self._slices[fname] = slice(start, start + width)
            start += width

    @property
    def width(self) -> int:
        return sum(w for _, w in self.fields)

    @property
    def nbytes(self) -> int:
        """Bytes of one packed row, header included."""
        return _HEADER.size + 8 * self.width

    def slice(self, name: str) -> slice:
        return self._slices[name]

    def view(self, state: np.ndarray, name: str) -> np.ndarray:
        """The columns of ``name`` in ``state`` (a view: writes go to ``state``);
        a width-1 field is returned as a 1-D column."""
        s = self._slices[name]
        return state[:, s.start] if s.stop - s.start == 1 else state[:, s]

    def _ident(self) -> tuple[bytes, int, int, int]:
        return MAGIC, zlib.crc32(self.name.encode()), self.version, self.width

    def packed_fields(self, header_only: bool = False) -> list[tuple[Any, ...]]:
        """The numpy record fields of a packed row (header, then the row's float64
        values), for ``fill_packed``; a record of other fields around them (a RESP
        command, say) then holds the row's bytes with no further copy."""
        head = [("magic", "S4"), ("crc", "<u4"), ("version", "<u4"), ("width", "<u4"),
                ("last_ts", "<f8")]  # fmt: skip
        return head if header_only else [*head, ("row", "<f8", (self.width,))]

    def _record(self) -> np.dtype:
        return np.dtype(self.packed_fields())

    def fill_packed(self, rec: np.ndarray, state: np.ndarray) -> None:
        """Write ``state``'s rows into the ``packed_fields`` of records ``rec`` (one
        record per row; a record without the ``row`` field gets the header only).
        The layout must have a ``last_ts`` field (copied into the header)."""
        magic, crc, version, width = self._ident()
        rec["magic"], rec["crc"], rec["version"], rec["width"] = magic, crc, version, width
        rec["last_ts"] = self.view(state, "last_ts")
        if "row" in (rec.dtype.names or ()):
            rec["row"] = state

    def pack(self, state: np.ndarray) -> memoryview:
        """Every row packed (header + the row's float64 values), back to back: row i
        is bytes ``[i * nbytes, (i + 1) * nbytes)``."""
        rec = np.empty(len(state), dtype=self._record())
        self.fill_packed(rec, state)
        return rec.data.cast("B")

    def headers(self, state: np.ndarray) -> list[bytes]:
        """The header of each row's packed bytes (its first ``HEADER_SIZE`` bytes)."""
        rec = np.empty(len(state), dtype=np.dtype(self.packed_fields(header_only=True)))
        self.fill_packed(rec, state)
        buf = rec.tobytes()
        return [buf[i : i + HEADER_SIZE] for i in range(0, len(buf), HEADER_SIZE)]

    def pack_rows(self, state: np.ndarray) -> list[bytes]:
        """One bytes object per row (see ``pack``)."""
        buf, size = self.pack(state), self.nbytes
        return [bytes(buf[i : i + size]) for i in range(0, len(buf), size)]

    def unpack_rows(
        self, blobs: Sequence[bytes | None], fresh: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows for ``blobs`` and a mask of the rows restored from them; a row whose
        blob is missing, of another detector or version, or truncated, is ``fresh``'s
        row instead."""
        size = self.nbytes
        sized = np.array([blob is not None and len(blob) == size for blob in blobs], dtype=bool)
        out = fresh.copy()
        if not sized.any():
            return out, sized
        rec = np.frombuffer(b"".join(b for b, s in zip(blobs, sized, strict=True) if s and b),
                            dtype=self._record())  # fmt: skip
        magic, crc, version, width = self._ident()
        same = ((rec["magic"] == magic) & (rec["crc"] == crc) & (rec["version"] == version)
                & (rec["width"] == width))  # fmt: skip
        rows = np.flatnonzero(sized)[same]
        out[rows] = rec["row"][same]
        ok = np.zeros(len(blobs), dtype=bool)
        ok[rows] = True
        return out, ok


def last_learned(blob: bytes | None) -> float | None:
    """The last timestamp a packed row (of any detector or version) had learned;
    None if ``blob`` is not a packed row."""
    if blob is None or len(blob) < _HEADER.size:
        return None
    magic, _, _, _, last_ts = _HEADER.unpack_from(blob)
    return float(last_ts) if magic == MAGIC else None


def shift_in(window: np.ndarray, x: np.ndarray, mask: np.ndarray) -> None:
    """Append ``x`` at the right end of each masked row of ``window`` (oldest value
    falls off the left), in place; rows outside ``mask`` are unchanged."""
    if mask.all():
        window[:, :-1] = window[:, 1:]
        window[:, -1] = x
        return
    rows = np.flatnonzero(mask)
    if len(rows):
        window[rows, :-1] = window[rows, 1:]
        window[rows, -1] = x[rows]


def nan_median_rows(a: np.ndarray) -> np.ndarray:
    """Median of each row ignoring NaN (NaN for a row with no value)."""
    return nan_median_count_rows(a)[0]


PARTITION_FROM = 32  # columns: from here a partition beats a sort (120: 0.8 ms vs 1.15)


def nan_median_count_rows(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(nan_median_rows(a), nan_count_rows(a))``, NaN counted once.  Wide windows
    with no NaN in any row (the steady state) are partitioned around the middle
    instead of sorted; the median is the same number either way."""
    n = a.shape[1]
    if n == 0:
        return np.full(a.shape[0], np.nan), np.zeros(a.shape[0], dtype=np.int64)
    cnt = n - np.isnan(a).sum(axis=1)
    if n >= PARTITION_FROM and len(cnt) and cnt.min() == n:
        k = n // 2
        p = np.partition(a, k, axis=1)
        hi = p[:, k]
        lo = p[:, :k].max(axis=1) if n % 2 == 0 else hi
        return 0.5 * (lo + hi), cnt
    s = np.sort(a, axis=1)  # NaN sorts last
    lo = np.maximum((cnt - 1) // 2, 0)
    hi = np.maximum(cnt // 2, 0)
    hi = np.minimum(hi, n - 1)
    r = np.arange(a.shape[0])
    med = 0.5 * (s[r, lo] + s[r, hi])
    return np.where(cnt > 0, med, np.nan), cnt


def nan_count_rows(a: np.ndarray) -> np.ndarray:
    return a.shape[1] - np.isnan(a).sum(axis=1)
