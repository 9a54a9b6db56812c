"""Writer threads: sealed batches from the buffer into the store, one round trip each.

The store groups a batch per metric with numpy, so a metric with several datapoints
in the batch gets one APPEND; the names written are added to the analyzer's changed
set in the same round trip.  A writer adds a name to the metrics set at most once a
minute (roomba removes dead ones; a returning name is added again within a minute).
While Redis is unreachable, full (``maxmemory``) or read-only (a replica after a
failover) a writer keeps its batch and retries with backoff (the buffer fills,
listeners pause, TCP pushes back on senders); nothing taken from the buffer is
dropped, except at shutdown after ``stop_timeout``, the points of a metric whose
series key holds another type (something else wrote it): those are counted
(``dropped.wrong_type``) and logged at most once a minute, and a batch whose write
raised anything else (a bug: ``skyline.runtime.threads``): it is dropped, counted
(``dropped.error``, and ``errors``; at most that many points are lost: a bug after the
write loses none) and logged with its traceback, and the writer carries on with the
next one, where retrying the same batch for ever would stop ingest.
"""

from __future__ import annotations

import logging
import threading
import time

from skyline.ingest.horizon.buffer import Batch, PointBuffer
from skyline.runtime.daemon import OUTAGES, Backoff, Counters, reconnect_if_replica
from skyline.runtime.threads import ThreadPolicy
from skyline.store.timeseries import TimeSeriesStore

log = logging.getLogger("skyline.horizon")
ANNOUNCE_EVERY = 60.0  # seconds a writer trusts that a name is in the metrics set
REFUSED_LOG_EVERY = 60.0  # seconds between two log lines about refused metrics


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
        self.bugs = ThreadPolicy(self.name, log, counters, backoff_max)
        self.stopping = threading.Event()
        self._refused_logged, self._refused_since = -REFUSED_LOG_EVERY, 0
        self.deadline = float("inf")
        self._announced: set[int] = set()  # ids added to the metrics set recently
        self._announced_names: list[str] | None = None  # the name table those ids index
        self._announced_at = 0.0

    def run(self) -> None:
        while True:
            batch = self.buffer.get(timeout=0.1)
            if batch is None:
                if self.stopping.is_set() and self.buffer.empty():
                    return
                continue
            try:
                self._write(batch)
            except Exception:  # noqa: BLE001 - a bug (ThreadPolicy logs it): the batch is dropped
                self.counters.inc("dropped.error", len(batch))
                self.stopping.wait(self.bugs.bug(f"writing a batch of {len(batch)} datapoints "
                                                 "(dropped)"))  # fmt: skip
            else:
                self.bugs.ok()
            finally:
                self.buffer.done(len(batch))  # or the buffer would think it full for ever

    def _write(self, batch: Batch) -> None:
        now = time.monotonic()
        if now - self._announced_at > ANNOUNCE_EVERY:
            self._announced, self._announced_at = set(), now
        fresh = (
            not self._announced.issuperset(batch.ids) or batch.names is not self._announced_names
        )
        while True:
            refused: dict[str, int] = {}
            try:
                written = self.store.append_batch(
                    batch.ids, batch.timestamps, batch.values, batch.names,
                    changed=True, announce=fresh, refused=refused,
                )  # fmt: skip
            except OUTAGES as exc:
                reconnect_if_replica(exc, self.store.redis)
                if time.monotonic() > self.deadline:
                    self.counters.inc("dropped.shutdown", len(batch))
                    log.error(
                        "stop: Redis unreachable or refusing writes, %d datapoints not written (%s)",
                        len(batch),
                        exc,
                    )
                    break
                delay = self.backoff.next()
                self.counters.inc("write_retries")
                log.warning("writing to Redis failed (%s); retrying in %.1fs", exc, delay)
                time.sleep(delay)
                continue
            self.backoff.reset()
            if fresh:
                if batch.names is not self._announced_names:
                    self._announced, self._announced_names = set(), batch.names
                self._announced.update(batch.ids)
            self.counters.inc("datapoints_written", written)
            self.counters.inc("redis_round_trips")
            if refused:
                self._refused(refused)
            break

    def _refused(self, refused: dict[str, int]) -> None:
        """Points Redis refused because their series key holds another type."""
        self.counters.inc("dropped.wrong_type", sum(refused.values()))
        self._refused_since += sum(refused.values())
        now = time.monotonic()
        if now - self._refused_logged >= REFUSED_LOG_EVERY:
            log.error("%d datapoints dropped since the last such message: series keys hold "
                      "another type than a string (written by something else than Skyline?), "
                      "e.g. those of %s", self._refused_since, ", ".join(sorted(refused)[:5]))  # fmt: skip
            self._refused_logged, self._refused_since = now, 0

    def stop(self, timeout: float) -> None:
        """Write what is queued (for at most ``timeout`` seconds), then end."""
        self.deadline = time.monotonic() + timeout
        self.stopping.set()
        self.join(timeout + 5)
