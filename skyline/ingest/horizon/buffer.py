"""The bounded buffer between horizon's listeners and its writers.

Listeners (one event-loop thread) add datapoints to an open batch; a batch is
sealed when it holds ``batch_points`` or is ``batch_interval`` old, and queued for
the writer threads.  The buffer counts every datapoint not yet written: above the
high watermark it calls ``on_pause`` (listeners stop reading their sockets, so TCP
pushes back on senders), below the low watermark ``on_resume``; beyond the hard
limit datapoints are dropped and counted.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from skyline.runtime.daemon import Counters


@dataclass
class Batch:
    """Datapoints as metric ids into ``names`` (the intake's name table) and two lists."""

    ids: list[int] = field(default_factory=list)
    timestamps: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    opened: float = 0.0

    def __len__(self) -> int:
        return len(self.ids)


class PointBuffer:
    def __init__(
        self,
        *,
        batch_points: int,
        batch_interval: float,
        high: int,
        low: int,
        limit: int,
        counters: Counters,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.batch_points, self.batch_interval = batch_points, batch_interval
        self.high, self.low, self.limit = high, low, limit
        self.counters = counters
        self.clock = clock
        self.on_pause: Callable[[], object] = lambda: None
        self.on_resume: Callable[[], object] = lambda: None
        self.paused = False
        self._open = Batch()
        self._sealed: queue.SimpleQueue[Batch] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._pending = 0  # datapoints added and not yet done()

    @property
    def pending(self) -> int:
        return self._pending

    def add(
        self, ids: list[int], timestamps: list[float], values: list[float], names: list[str]
    ) -> int:
        """Add datapoints whose ids index ``names`` (listener thread); returns how many
        were dropped."""
        room = max(self.limit - self._pending, 0)
        dropped = 0
        if len(ids) > room:
            dropped = len(ids) - room
            ids, timestamps, values = ids[:room], timestamps[:room], values[:room]
            self.counters.inc("dropped.queue_full", dropped)
        if ids:
            if self._open.ids and self._open.names is not names:
                self.seal()  # the name table was replaced: a batch refers to one table
            batch = self._open
            if not batch.ids:
                batch.opened = self.clock()
                batch.names = names
            batch.ids += ids
            batch.timestamps += timestamps
            batch.values += values
            with self._lock:
                self._pending += len(ids)
                pause = not self.paused and self._pending >= self.high
                if pause:
                    self.paused = True
            if pause:
                self.counters.inc("paused")
                self.on_pause()
            if len(batch) >= self.batch_points:
                self.seal()
        return dropped

    def seal_if_due(self) -> None:
        if self._open.ids and self.clock() - self._open.opened >= self.batch_interval:
            self.seal()

    def seal(self) -> None:
        """Queue the open batch for the writers (listener thread)."""
        if self._open.ids:
            self._sealed.put(self._open)
            self._open = Batch()

    def get(self, timeout: float) -> Batch | None:
        """The next sealed batch (writer thread), or None after ``timeout`` seconds."""
        try:
            return self._sealed.get(timeout=timeout)
        except queue.Empty:
            return None

    def done(self, n: int) -> None:
        """``n`` datapoints were written or given up (writer thread)."""
        with self._lock:
            self._pending -= n
            resume = self.paused and self._pending <= self.low
            if resume:
                self.paused = False
        if resume:
            self.on_resume()

    def empty(self) -> bool:
        return self._sealed.empty() and not self._open.ids
