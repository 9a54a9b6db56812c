"""Writer threads: sealed batches from the buffer into the store, one round trip each.

A batch is grouped per metric so a metric with several datapoints in the batch gets
one APPEND; the names written are added to the analyzer's changed set in the same
round trip.  While Redis is unreachable a writer keeps its batch and retries with
backoff (the buffer fills, listeners pause, TCP pushes back on senders); nothing
taken from the buffer is dropped, except at shutdown after ``stop_timeout``.
"""

from __future__ import annotations

import logging
import threading
import time

from skyline.daemon import OUTAGES, Backoff, Counters
from skyline.horizon.buffer import Batch, PointBuffer
from skyline.timeseries import TimeSeriesStore

log = logging.getLogger("skyline.horizon")


def group(batch: Batch) -> dict[str, tuple[list[float], list[float]]]:
    grouped: dict[str, tuple[list[float], list[float]]] = {}
    for name, ts, value in zip(batch.names, batch.timestamps, batch.values, strict=True):
        entry = grouped.get(name)
        if entry is None:
            grouped[name] = ([ts], [value])
        else:
            entry[0].append(ts)
            entry[1].append(value)
    return grouped


class Writer(threading.Thread):
    def __init__(
        self,
        buffer: PointBuffer,
        store: TimeSeriesStore,
        counters: Counters,
        backoff_max: float,
        index: int = 0,
    ) -> None:
        super().__init__(name=f"horizon-writer-{index}", daemon=True)
        self.buffer = buffer
        self.store = store
        self.counters = counters
        self.backoff = Backoff(backoff_max)
        self.stopping = threading.Event()
        self.deadline = float("inf")

    def run(self) -> None:
        while True:
            batch = self.buffer.get(timeout=0.1)
            if batch is None:
                if self.stopping.is_set() and self.buffer.empty():
                    return
                continue
            self._write(batch)

    def _write(self, batch: Batch) -> None:
        grouped = group(batch)
        while True:
            try:
                written = self.store.append_grouped(grouped, changed=True)
            except OUTAGES as exc:
                if time.monotonic() > self.deadline:
                    self.counters.inc("dropped.shutdown", len(batch))
                    log.error(
                        "stop: Redis unreachable, %d datapoints not written (%s)", len(batch), exc
                    )
                    break
                delay = self.backoff.next()
                self.counters.inc("write_retries")
                log.warning("writing to Redis failed (%s); retrying in %.1fs", exc, delay)
                time.sleep(delay)
                continue
            self.backoff.reset()
            self.counters.inc("datapoints_written", written)
            self.counters.inc("redis_round_trips")
            break
        self.buffer.done(len(batch))

    def stop(self, timeout: float) -> None:
        """Write what is queued (for at most ``timeout`` seconds), then end."""
        self.deadline = time.monotonic() + timeout
        self.stopping.set()
        self.join(timeout + 5)
