"""Per-request time limits for flux: a soft one the parsers check, a hard one for workers.

Every request gets a deadline of ``[flux] request_time_limit`` seconds.  The parsing
loops (JSON metrics, Influx lines, remote_write series) call ``check`` every
``EVERY`` items; past the deadline the request is refused with 503 and Retry-After.
Nothing has been written then (points are written once, after parsing), so the
client's retry loses nothing.  The sizes flux accepts are bounded, so on a healthy
worker no request gets near the limit: reaching it means the worker is starved.

Some work cannot check a clock: ``json.loads`` of a large body, gzip/snappy
decompression.  In gunicorn workers a ``Watchdog`` thread looks at the requests in
flight every second (or half the limit); one still running at twice the limit makes the worker exit
(exit status 70), and gunicorn starts a fresh one, as its own ``timeout`` does for
sync workers.  The other requests on that worker get their connection closed with no
2xx, so their clients retry: nothing acknowledged is lost.  The threaded server of
tests and development has no watchdog (its process is the flux daemon itself).
"""

from __future__ import annotations

import logging
import os
import threading
import time

from flask import g, request

from skyline.ingest.flux.limits import HttpError
from skyline.runtime.daemon import Counters

log = logging.getLogger("skyline.flux")

EVERY = 256  # items parsed between two looks at the clock
HARD_EXIT_STATUS = 70  # EX_SOFTWARE


def start(limit: float) -> None:
    """Before each request: its deadline."""
    g.flux_deadline = time.monotonic() + limit
    g.flux_limit = limit


def check(i: int) -> None:
    """In a parsing loop, at item ``i``: refuse the request if it is past its deadline."""
    if i % EVERY or "flux_deadline" not in g or time.monotonic() <= g.flux_deadline:
        return
    raise HttpError(
        503, "time_limit",
        f"the request ran past [flux] request_time_limit ({g.flux_limit:g} s) and was "
        "stopped before anything was stored; retry later",
        retry_after=5,
    )  # fmt: skip


class Watchdog(threading.Thread):
    """Ends this worker process when a request overruns twice the limit (gunicorn only)."""

    def __init__(self, limit: float, counters: Counters) -> None:
        super().__init__(name="flux-watchdog", daemon=True)
        self.hard = 2 * limit
        self.counters = counters
        self.interval = min(1.0, limit / 2)  # looks often enough to catch 2 x limit
        self._lock = threading.Lock()
        self._running: dict[int, tuple[float, str]] = {}

    def begin(self) -> None:
        with self._lock:
            self._running[threading.get_ident()] = (
                time.monotonic(),
                f"{request.method} {request.path}",
            )

    def end(self) -> None:
        with self._lock:
            self._running.pop(threading.get_ident(), None)

    def overrun(self, now: float) -> tuple[float, str] | None:
        """(seconds, request) of the oldest request past the hard limit, if any."""
        with self._lock:
            oldest = min(self._running.values(), default=None)
        if oldest is None or now - oldest[0] <= self.hard:
            return None
        return now - oldest[0], oldest[1]

    def run(self) -> None:
        while True:
            time.sleep(self.interval)
            late = self.overrun(time.monotonic())
            if late is not None:
                self.counters.inc("worker_restarts.time_limit")
                log.error("flux worker %d: %s has run %.1f s, over twice [flux] "
                          "request_time_limit: exiting so gunicorn starts a fresh worker",
                          os.getpid(), late[1], late[0])  # fmt: skip
                logging.shutdown()
                os._exit(HARD_EXIT_STATUS)
