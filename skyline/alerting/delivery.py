"""Delivery: one worker thread per channel, so a slow or failing channel never delays
the others.  A worker keeps its alerts in a queue ordered by when each is next due, so
one alert waiting out its backoff never holds up another.  Each attempt runs under the
delivery's lease, re-reads its durable state (another alerter may have finished it),
and follows the one retry policy (skyline.alerting.retry): a PermanentError ends it at
once, a DeliveryError is retried after a capped, jittered backoff until the channel's
deadline.  Every attempt is reported to ``record`` (the alert log), the final outcome
to ``done``.  At stop, a delivery not finished is left as it is in Redis: its stream
entry stays unacknowledged and the next alerter resumes it.  While Redis is away an
attempt is tried again a second later; any other exception around an attempt (a bug:
``skyline.runtime.threads``) is counted and logged, and the alert is tried again after
a growing pause (up to the channel's ``retry_backoff_max``), kept, not lost: the worker
never ends before it is stopped.  Once an attempt's outcome is decided (sent, or failed)
it is kept in the worker until its bookkeeping (the delivery's status, ``record``,
``done``) is written, so an outage or a bug there never makes the channel send twice; a
bug that outlasts the delivery's deadline before a send decides it failed.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from skyline.alerting.base import Alert, Channel, DeliveryError, PermanentError
from skyline.alerting.pending import Delivery
from skyline.alerting.retry import RetryPolicy
from skyline.runtime.daemon import Counters
from skyline.runtime.threads import ThreadPolicy

log = logging.getLogger("skyline.alerters")


@dataclass(frozen=True)
class Job:
    stream: str
    entry_id: bytes
    alert: Alert
    delivery: Delivery


Record = Callable[[Job, int, str, str | None], None]
Done = Callable[[Job, str], None]
Failing = Callable[[str, float, str], None]  # channel, failing since, last error


class ChannelWorker(threading.Thread):
    def __init__(self, channel: Channel, policy: RetryPolicy, *, record: Record, done: Done,
                 stop: threading.Event, failing_after: float, on_failing: Failing,
                 counters: Counters) -> None:  # fmt: skip
        super().__init__(name=f"alerter-{channel.name}", daemon=True)
        self.bugs = ThreadPolicy(self.name, log, counters, policy.backoff_max)
        # outcomes decided, their bookkeeping not yet written: (stream, entry id) ->
        # (attempt, status, error)
        self._settling: dict[tuple[str, bytes], tuple[int, str, str | None]] = {}
        self.channel, self.policy = channel, policy
        self.record, self.done, self.on_failing = record, done, on_failing
        self.stop, self.failing_after = stop, failing_after
        self.jobs: queue.Queue[Job] = queue.Queue(maxsize=10_000)
        self._due: list[tuple[float, int, Job]] = []
        self._seq = itertools.count()
        self.failing_since: float | None = None
        self._failing_raised = False

    def run(self) -> None:
        while not self.stop.is_set():
            now = time.time()
            wait = min(0.2, max(0.0, self._due[0][0] - now)) if self._due else 0.2
            try:
                job = self.jobs.get(timeout=wait) if wait > 0 else self.jobs.get_nowait()
                self._schedule(job, job.delivery.next_at)
                continue
            except queue.Empty:
                pass
            if self._due and self._due[0][0] <= time.time():
                job = heapq.heappop(self._due)[2]
                try:
                    self.attempt(job)
                except redis.RedisError as exc:  # Redis away: the alert waits, it is not lost
                    log.warning("%s: Redis error, retrying in 1 s: %s", self.channel.name, exc)
                    self._schedule(job, time.time() + 1.0)
                except Exception as exc:  # noqa: BLE001 - a bug (ThreadPolicy logs it): the alert waits
                    pause = self.bugs.bug(f"an attempt for {job.alert.event.id}")
                    if time.time() + pause > job.delivery.deadline:
                        self._settling.setdefault(_key(job), (
                            job.delivery.attempt, "failed",
                            f"gave up after a bug: {type(exc).__name__}: {exc}"[:300],
                        ))  # fmt: skip
                    self._schedule(job, time.time() + pause)
                else:
                    self.bugs.ok()

    def _schedule(self, job: Job, when: float) -> None:
        heapq.heappush(self._due, (when, next(self._seq), job))

    def attempt(self, job: Job) -> None:
        d = job.delivery
        if not d.lease():  # another alerter is making an attempt right now
            self._schedule(job, time.time() + d.lease_ms / 1000)
            return
        try:
            d.reload()
            if d.status != "pending":  # finished by another alerter meanwhile, or by us
                self._settling.pop(_key(job), None)
                self.done(job, d.status)
                return
            if _key(job) in self._settling:  # decided, not written: write it, never resend
                self._settle(job)
                return
            self._try(job, d.begin_attempt())
        finally:
            d.release()

    def _try(self, job: Job, attempt: int) -> None:
        d = job.delivery
        try:
            note = self.channel.send(job.alert, d)
        except PermanentError as exc:
            self._final(job, attempt, "failed", f"permanent: {exc}")
        except DeliveryError as exc:
            self._transient(job, attempt, exc)
        except Exception as exc:  # a bug in a channel must not kill its worker
            log.exception("channel %s raised", self.channel.name)
            self._final(job, attempt, "failed", f"{type(exc).__name__}: {exc}"[:300])
        else:
            self.failing_since, self._failing_raised = None, False
            self._final(job, attempt, "sent", note)

    def _transient(self, job: Job, attempt: int, exc: DeliveryError) -> None:
        d = job.delivery
        now = time.time()
        next_at = now + self.policy.delay(attempt, exc.retry_after)
        if self.policy.exhausted(attempt, next_at, d.deadline):
            waited = now - float(d.fields.get("created", now))
            self._final(job, attempt, "failed",
                        f"gave up after {attempt} attempts in {waited:.0f} s: {exc}")  # fmt: skip
            return
        d.retry_at(next_at, str(exc))
        self._failed_attempt(str(exc))
        self.record(job, attempt, "retrying", str(exc))
        self._schedule(job, next_at)

    def _final(self, job: Job, attempt: int, status: str, error: str | None) -> None:
        if status == "failed":
            self._failed_attempt(error or "")
        self._settling[_key(job)] = (attempt, status, error)
        self._settle(job)

    def _settle(self, job: Job) -> None:
        """Write the decided outcome of the job's attempt; it stays in ``_settling``
        (and the next look at the job writes it, without sending) until written."""
        attempt, status, error = self._settling[_key(job)]
        job.delivery.finish(status, error or "")
        self.record(job, attempt, status, error)
        del self._settling[_key(job)]
        self.done(job, status)

    def _failed_attempt(self, error: str) -> None:
        """Every attempt of the channel failing for failing_after: say so, once."""
        now = time.time()
        if self.failing_since is None:
            self.failing_since = now
        if not self._failing_raised and now - self.failing_since >= self.failing_after:
            self._failing_raised = True
            try:
                self.on_failing(self.channel.name, self.failing_since, error)
            except Exception:  # raising the alarm must not stop deliveries
                log.exception("could not raise the failing-channel event of %s", self.channel.name)


def _key(job: Job) -> tuple[str, bytes]:
    return job.stream, job.entry_id
