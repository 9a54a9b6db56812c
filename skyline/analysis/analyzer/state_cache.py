"""The detector states an analyzer saved last, kept in memory between passes.

A pass of the analyzer's default mode (``skyline.analysis.analyzer.detect``) reads
a cached state's 24-byte header back from Redis instead of the whole state, and
uses the cached row only while that header is still the one this process saved:
another writer, a TTL expiry or a deletion is noticed.  With a ``checkpoint``
interval a cached state may run ahead of the saved one (``defer``) until it is
due.

The rows live in one ``(capacity, width)`` float64 array (a slab), addressed by
slot, so a pass of a thousand metrics gathers and scatters its cached rows with
one numpy indexing each, not a Python copy per metric.  ``limit`` bounds the
bytes held (rows, headers and header-reading commands); past it the states saved
longest ago are dropped first, and ``put`` returns the unsaved ones it dropped,
which the caller must save.  A limit of 0 disables the cache.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

from skyline.store import raw as redis_raw


class StateCache:
    """Cached detector state rows by metric (see the module docstring)."""

    def __init__(self, limit: int, width: int, checkpoint: float = 0.0) -> None:
        self.limit = int(limit)
        self.width = int(width)
        self.checkpoint = float(checkpoint)
        self.size = 0  # bytes held
        self._slot: dict[str, int] = {}  # metric -> slot, the one saved longest ago first
        self._free: list[int] = []
        self._rows = np.empty((0, self.width))
        self._header: list[bytes] = []  # the header of the state as last saved in Redis
        self._check: list[bytes] = []  # the GETRANGE command that reads that header back
        self._due = np.zeros(0)  # when a dirty row must be saved (the pass clock)
        self._spread = np.zeros(0)  # the metric's factor on the checkpoint interval
        self._dirty = np.zeros(0, dtype=bool)  # the row is newer than the saved state

    def __len__(self) -> int:
        return len(self._slot)

    # -- reading ----------------------------------------------------------------------
    def slots(self, metrics: Sequence[str]) -> np.ndarray:
        """Each metric's slot, -1 where it is not cached."""
        get = self._slot.get
        return np.fromiter((get(m, -1) for m in metrics), dtype=np.intp, count=len(metrics))

    def header(self, slot: int) -> bytes:
        return self._header[slot]

    def check(self, slot: int) -> bytes:
        return self._check[slot]

    def rows(self, slots: np.ndarray) -> np.ndarray:
        """A copy of the rows in ``slots`` (every one cached)."""
        return self._rows[slots]

    def rows_in_place(self, slots: np.ndarray) -> np.ndarray | None:
        """The rows in ``slots`` themselves (a view, no copy) when the slots are one
        ascending run, else None.  Changing them changes the cache: the caller
        ``defer``s them with ``in_place`` or drops them.  Copying a chunk's rows
        out and back cost about 2 us a metric (7 KB rows)."""
        if not len(slots) or slots[0] < 0 or slots[-1] - slots[0] != len(slots) - 1:
            return None
        if len(slots) > 1 and not (np.diff(slots) == 1).all():
            return None
        return self._rows[slots[0] : slots[-1] + 1]

    def get(self, metric: str) -> tuple[bytes, np.ndarray, bytes] | None:
        """(saved header, a copy of the row, the command reading the saved header
        back) or None."""
        slot = self._slot.get(metric)
        if slot is None:
            return None
        return self._header[slot], self._rows[slot].copy(), self._check[slot]

    def dirty(self, metrics: Sequence[str] | None = None) -> list[tuple[str, np.ndarray]]:
        """The unsaved states (of ``metrics``, or all): (metric, a copy of the row)."""
        names = self._slot if metrics is None else [m for m in metrics if m in self._slot]
        return [(m, self._rows[self._slot[m]].copy()) for m in names if self._dirty[self._slot[m]]]

    # -- writing ----------------------------------------------------------------------
    def defer(
        self, slots: np.ndarray, state: np.ndarray, moved: np.ndarray, now: float,
        in_place: bool = False,
    ) -> np.ndarray:  # fmt: skip
        """Keep the ``moved`` rows of ``state`` in the cache unsaved where they came
        from the cache (slot >= 0) and are not due yet; returns that mask (the other
        moved rows must be saved now).  One scatter when every row is kept, none
        when ``state`` is the cache's own rows (``rows_in_place``)."""
        keep = np.zeros(len(slots), dtype=bool)
        if self.checkpoint <= 0 or not len(slots):
            return keep
        cached = moved & (slots >= 0)
        keep[cached] = now < self._due[slots[cached]]
        if keep.all():
            if not in_place:
                self._rows[slots] = state
            self._dirty[slots] = True
        elif keep.any():
            if not in_place:
                self._rows[slots[keep]] = state[keep]
            self._dirty[slots[keep]] = True
        return keep

    def put(self, metrics: Sequence[str], keys: Sequence[bytes], headers: Sequence[bytes],
            rows: np.ndarray, now: float) -> list[tuple[str, np.ndarray]]:  # fmt: skip
        """Cache ``rows`` as just saved (metric i, named once, under Redis key
        ``keys[i]``, with ``headers[i]``, all headers of one length: the layout's);
        returns the dirty states dropped to make room (metric, row).  Room is made
        before any slot is taken, so the slab never grows past what the limit holds."""
        if self.limit <= 0 or not len(metrics):
            return []
        checks = {i: _header_check(keys[i], headers[i])
                  for i, m in enumerate(metrics) if m not in self._slot}  # fmt: skip
        if not checks:  # every one cached already (the steady state): no room to make
            return self._put_cached(metrics, headers, rows, now)
        need = sum(self._entry_size(headers[i], c) for i, c in checks.items())
        held = sum(self._entry_size(h, self._check[self._slot[m]])
                   for m, h in zip(metrics, headers, strict=True) if m in self._slot)  # fmt: skip
        if need + held > self.limit:  # the batch alone is over the limit: keep its last ones
            return self._put_last(metrics, keys, headers, rows, now)
        for m in metrics:  # just saved: now the newest, kept while older ones go
            slot = self._slot.pop(m, None)
            if slot is not None:
                self._slot[m] = slot
        evicted = self._evict(need)
        slots = np.empty(len(metrics), dtype=np.intp)
        for i, (metric, head) in enumerate(zip(metrics, headers, strict=True)):
            check = checks.get(i)
            if check is None:  # re-inserted: the batch is the newest, in its order
                slot = self._slot.pop(metric)
                self._slot[metric] = slot
            else:
                slot = self._new_slot()
                self._check[slot] = check
                self._spread[slot] = _spread(metric)
                self.size += self._entry_size(head, check)
                self._slot[metric] = slot
            self._header[slot] = head
            slots[i] = slot
        self._rows[slots] = rows
        self._dirty[slots] = False
        self._due[slots] = now + self.checkpoint * self._spread[slots]
        return evicted

    def _put_cached(self, metrics: Sequence[str], headers: Sequence[bytes], rows: np.ndarray,
                    now: float) -> list[tuple[str, np.ndarray]]:  # fmt: skip
        """``put`` of metrics that are all cached: the same slots and sizes (a header
        keeps its length), now the newest in batch order; nothing is evicted."""
        order = self._slot
        for m in metrics:
            order[m] = order.pop(m)
        slots = self.slots(metrics)
        header = self._header
        for slot, head in zip(slots.tolist(), headers, strict=True):
            header[slot] = head
        self._rows[slots] = rows
        self._dirty[slots] = False
        self._due[slots] = now + self.checkpoint * self._spread[slots]
        return []

    def _put_last(self, metrics: Sequence[str], keys: Sequence[bytes], headers: Sequence[bytes],
                  rows: np.ndarray, now: float) -> list[tuple[str, np.ndarray]]:  # fmt: skip
        """``put`` of a batch larger than the limit: everything else is dropped and
        the batch's last states that fit are kept."""
        for m in metrics:
            self.drop(m)
        evicted = self._evict(self.limit + 1)  # all of them
        keep, room = len(metrics), self.limit
        while keep > 0:
            i = keep - 1
            size = self._entry_size(headers[i], _header_check(keys[i], headers[i]))
            if size > room:
                break
            room -= size
            keep -= 1
        if keep < len(metrics):
            evicted += self.put(metrics[keep:], keys[keep:], headers[keep:], rows[keep:], now)
        return evicted

    def drop(self, metric: str) -> None:
        slot = self._slot.pop(metric, None)
        if slot is None:
            return
        self.size -= self._entry_size(self._header[slot], self._check[slot])
        self._dirty[slot] = False
        self._free.append(slot)

    def _entry_size(self, header: bytes, check: bytes) -> int:
        """Bytes one cached state counts against the limit."""
        return len(header) + len(check) + 8 * self.width

    def _evict(self, room: int) -> list[tuple[str, np.ndarray]]:
        """Drop the states saved longest ago until ``room`` more bytes fit; returns
        the dirty ones dropped."""
        evicted: list[tuple[str, np.ndarray]] = []
        while self._slot and self.size + room > self.limit:
            oldest = next(iter(self._slot))
            slot = self._slot[oldest]
            if self._dirty[slot]:
                evicted.append((oldest, self._rows[slot].copy()))
            self.drop(oldest)
        return evicted

    def _new_slot(self) -> int:
        if not self._free:
            old = len(self._header)
            # doubling, but never past the rows the limit can hold (each costs more
            # than its 8 * width bytes)
            grow = max(1, min(max(64, old), self.limit // (8 * self.width) + 1 - old))
            self._rows = np.concatenate([self._rows, np.empty((grow, self.width))])
            self._due = np.concatenate([self._due, np.zeros(grow)])
            self._spread = np.concatenate([self._spread, np.zeros(grow)])
            self._dirty = np.concatenate([self._dirty, np.zeros(grow, dtype=bool)])
            self._header += [b""] * grow
            self._check += [b""] * grow
            self._free = list(range(old + grow - 1, old - 1, -1))
        return self._free.pop()


def _header_check(key: bytes, header: bytes) -> bytes:
    """The command that reads a saved state's header back (GETRANGE)."""
    return redis_raw.getrange(key, 0, len(header) - 1)


def _spread(metric: str) -> float:
    """The metric's factor in [0.5, 1) on the checkpoint interval, so the saves of
    many metrics spread over passes."""
    return 0.5 + (zlib.crc32(metric.encode()) % 1000) / 2000.0
