"""The daemon's exception policy (``skyline.runtime.daemon``), for the threads a daemon
starts beside its loop: horizon's writers, the alerter's channel workers, flux's
counter pusher and StatsD listener.

Each such thread handles the outages it expects where it knows what to do with the
work in hand: a writer retries its batch, a channel worker keeps its alert for later.
Any other exception is a bug, and a bug must not end the thread: a writer that ended
would stop ingest for good and silently (its buffer fills, the listeners pause), a
channel worker would leave every later alert of its channel undelivered.  So the
thread catches it and calls ``ThreadPolicy.bug``, which counts it as ``errors`` (the
daemon's counter), logs it with its traceback (at most once per ``log_every`` seconds
per thread, saying how many were not logged, so a bug hit by every packet cannot flood
the log) and returns a pause for threads that retry: 0.5 s doubling up to
``backoff_max``, as a daemon's failed pass does, until ``ok`` says a step succeeded.
What happens to the work in hand, and whether to pause, is the thread's decision, said
where it calls ``bug``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from skyline.runtime.daemon import Backoff, Counters

LOG_EVERY = 60.0  # seconds between two tracebacks of one thread


class ThreadPolicy:
    """What a daemon's worker thread does with an exception nobody expected."""

    def __init__(self, name: str, log: logging.Logger, counters: Counters | None,
                 backoff_max: float = 30.0, log_every: float = LOG_EVERY,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.name, self.log, self.counters = name, log, counters
        self.backoff = Backoff(backoff_max)
        self.log_every, self.clock = log_every, clock
        self._logged_at: float | None = None
        self._unlogged = 0

    def bug(self, what: str, exc: BaseException | None = None) -> float:
        """Call in an ``except Exception`` block (or pass the ``exc`` met otherwise, an
        error reply): count, log (rate-limited) and return the seconds to pause before
        trying again (for a thread that retries)."""
        delay = self.backoff.next()
        if self.counters is not None:
            self.counters.inc("errors")
        now = self.clock()
        if self._logged_at is not None and now - self._logged_at < self.log_every:
            self._unlogged += 1
            return delay
        since = f" ({self._unlogged} more since the last one logged)" if self._unlogged else ""
        self.log.error("%s: %s failed (a bug); carrying on%s", self.name, what, since,
                       exc_info=exc if exc is not None else True)  # fmt: skip
        self._logged_at, self._unlogged = now, 0
        return delay

    def ok(self) -> None:
        """A step succeeded: the next bug pauses the shortest time again."""
        self.backoff.reset()
