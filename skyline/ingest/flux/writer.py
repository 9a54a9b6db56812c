"""From validated datapoints to the store (and optionally to Graphite).

Every request's accepted datapoints are written in one batch, in one Redis round
trip (``TimeSeriesStore.append_batch`` with ``changed=True`` so the analyzer sees
the new data) before the client is answered: a 2xx means the data is stored.  If
Redis is unreachable the request is answered 503 and the client retries, so
nothing acknowledged is lost.  Copies for Graphite go through a bounded queue
that sheds (and counts) when the Graphite side cannot keep up.
"""

from __future__ import annotations

import logging
import pickle
import socket
import struct
import threading
import time
from collections import Counter, deque
from collections.abc import Callable

from skyline.runtime.daemon import Backoff, Counters
from skyline.runtime.threads import ThreadPolicy
from skyline.store.datapoint import Reject, Window, check_point, printable
from skyline.store.timeseries import TimeSeriesStore

log = logging.getLogger("skyline.flux")
MAX_REASONS = 100  # rejects described one by one in a response; the rest are counted
FORWARD_SLICE = 5000


class Points:
    """One request's accepted datapoints, as ids into a per-request name table."""

    __slots__ = ("index", "names", "ids", "timestamps", "values")

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.names: list[str] = []
        self.ids: list[int] = []
        self.timestamps: list[float] = []
        self.values: list[float] = []

    def add(self, name: str, ts: float, value: float) -> None:
        i = self.index.get(name)
        if i is None:
            i = self.index[name] = len(self.names)
            self.names.append(name)
        self.ids.append(i)
        self.timestamps.append(ts)
        self.values.append(value)

    def __len__(self) -> int:
        return len(self.ids)

    def listing(self, limit: int = 1000) -> list[list[object]]:
        """``[[metric, timestamp, value], ...]`` for test-mode responses."""
        return [
            [self.names[i], t, v]
            for i, t, v in zip(self.ids[:limit], self.timestamps, self.values, strict=False)
        ]


class Rejects:
    """Rejected items of one request: counted by reason, the first few described."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.items: list[dict[str, object]] = []

    def add(self, reason: str, where: object = None, metric: object = None, n: int = 1) -> None:
        """``n`` items rejected for ``reason``, described once (with ``points`` when
        ``n`` is more than one: a metric's points refused together)."""
        self.counts[reason] += n
        if len(self.items) < MAX_REASONS:
            item: dict[str, object] = {"reason": reason}
            if where is not None:
                item["index"] = where
            if metric is not None:
                item["metric"] = printable(metric, 200)
            if n != 1:
                item["points"] = n
            self.items.append(item)

    def __len__(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> dict[str, object]:
        return {"rejected": len(self), "reasons": dict(self.counts), "errors": self.items}


class Ingest:
    """Validates datapoints against the time window and writes accepted batches."""

    def __init__(
        self,
        store: TimeSeriesStore,
        counters: Counters,
        *,
        max_age: float,
        max_future: float,
        fill_max_age: float,
        forwarder: GraphiteForwarder | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.counters, self.forwarder, self.clock = store, counters, forwarder, clock
        self.window = Window(max_age, max_future)
        self.fill_window = Window(max(fill_max_age, max_age), max_future)

    def check(
        self, points: Points, rejects: Rejects, name: object, ts: object, value: object,
        *, fill: bool = False, where: object = None, now: float | None = None,
    ) -> None:  # fmt: skip
        reason, t, v = check_point(
            name, ts, value, now if now is not None else self.clock(),
            self.fill_window if fill else self.window,
        )  # fmt: skip
        if reason:
            rejects.add(reason, where, name)
        else:
            points.add(name, t, v)  # type: ignore[arg-type]

    def write(self, points: Points, rejects: Rejects, *, test: bool = False) -> int:
        """Store the accepted points (unless ``test``) and count the outcome; returns
        how many were stored.  A metric whose series key holds another type (written
        by something else) has its points refused by Redis: each is a reject
        (``series_key_wrong_type``), the others are stored."""
        if test or not points.ids:
            self._count(rejects)
            return len(points)
        refused: dict[str, int] = {}
        stored = self.store.append_batch(
            points.ids, points.timestamps, points.values, points.names, changed=True,
            refused=refused,
        )  # fmt: skip
        for metric, n in refused.items():
            rejects.add("series_key_wrong_type", metric=metric, n=n)
        self._count(rejects)
        self.counters.inc("datapoints_accepted", stored)
        if self.forwarder is not None:
            self.forwarder.put(points)
        return stored

    def _count(self, rejects: Rejects) -> None:
        for reason, n in rejects.counts.items():
            self.counters.inc(f"rejected.{reason}", n)


class GraphiteForwarder(threading.Thread):
    """Sends copies of accepted datapoints to a Graphite pickle receiver."""

    def __init__(self, target: str, limit: int, counters: Counters, backoff_max: float) -> None:
        super().__init__(name="flux-graphite-forwarder", daemon=True)
        host, _, port = target.rpartition(":")
        self.address = (host or "127.0.0.1", int(port))
        self.limit, self.counters = limit, counters
        self.backoff = Backoff(backoff_max)
        self.bugs = ThreadPolicy(self.name, log, counters)
        self.queue: deque[tuple[str, tuple[float, float]]] = deque()
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.sock: socket.socket | None = None

    def put(self, points: Points) -> None:
        names = points.names
        items = [
            (names[i], (t, v))
            for i, t, v in zip(points.ids, points.timestamps, points.values, strict=True)
        ]
        with self.lock:
            room = self.limit - len(self.queue)
            if len(items) > room:
                self.counters.inc("forward.dropped", len(items) - max(room, 0))
                items = items[: max(room, 0)]
            self.queue.extend(items)
        self.wake.set()

    def run(self) -> None:
        while not (self.stopping.is_set() and not self.queue):
            self.wake.wait(0.5)
            self.wake.clear()
            while self.queue:
                with self.lock:
                    chunk = [
                        self.queue.popleft() for _ in range(min(FORWARD_SLICE, len(self.queue)))
                    ]
                try:
                    sent = self._send(chunk)
                except Exception:  # noqa: BLE001 - a bug (ThreadPolicy logs it): the chunk is dropped
                    self.counters.inc("forward.dropped", len(chunk))
                    self.bugs.bug(f"forwarding {len(chunk)} datapoints (dropped)")
                    continue
                if not sent:
                    with self.lock:
                        self.queue.extendleft(reversed(chunk))
                    if self.stopping.wait(self.backoff.next()):
                        return
                    break

    def _send(self, chunk: list[tuple[str, tuple[float, float]]]) -> bool:
        payload = pickle.dumps(chunk, protocol=2)
        try:
            if self.sock is None:
                self.sock = socket.create_connection(self.address, timeout=5)
            self.sock.sendall(struct.pack("!L", len(payload)) + payload)
        except OSError as exc:
            self.counters.inc("forward.errors")
            log.warning("forwarding to Graphite %s failed: %s", self.address, exc)
            if self.sock is not None:
                self.sock.close()
                self.sock = None
            return False
        self.backoff.reset()
        self.counters.inc("forward.sent", len(chunk))
        return True

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        self.wake.set()
        self.join(timeout)


__all__ = ["GraphiteForwarder", "Ingest", "Points", "Reject", "Rejects"]
