"""Delivery: one worker thread per channel, so a slow or failing channel never delays
the others.  A worker tries an alert up to ``attempts`` times with doubling backoff;
a PermanentError ends it at once.  Every attempt is reported to ``record`` (the alert
log) and the final outcome to ``done``.  At stop, an alert not yet delivered is left
alone: its stream entry stays unacknowledged and is delivered after restart.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

from skyline.alerters.base import Alert, Channel, DeliveryError, PermanentError

log = logging.getLogger("skyline.alerters")


@dataclass(frozen=True)
class Job:
    stream: str
    entry_id: bytes
    alert: Alert


Record = Callable[[Job, int, str, str | None], None]
Done = Callable[[Job, str], None]


class ChannelWorker(threading.Thread):
    def __init__(self, channel: Channel, *, attempts: int, backoff: float, record: Record,
                 done: Done, stop: threading.Event) -> None:  # fmt: skip
        super().__init__(name=f"alerter-{channel.name}", daemon=True)
        self.channel = channel
        self.attempts, self.backoff = attempts, backoff
        self.record, self.done = record, done
        self.stop = stop
        self.jobs: queue.Queue[Job] = queue.Queue(maxsize=10_000)

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                job = self.jobs.get(timeout=0.2)
            except queue.Empty:
                continue
            self.deliver(job)

    def deliver(self, job: Job) -> None:
        for attempt in range(1, self.attempts + 1):
            if self.stop.is_set():
                return  # not acknowledged: delivered after restart
            try:
                self.channel.send(job.alert)
            except PermanentError as exc:
                self.record(job, attempt, "failed", str(exc))
                self.done(job, "failed")
                return
            except DeliveryError as exc:
                last = attempt == self.attempts
                self.record(job, attempt, "failed" if last else "retrying", str(exc))
                if last:
                    self.done(job, "failed")
                    return
                self.stop.wait(self.backoff * 2 ** (attempt - 1))
            except Exception as exc:  # a bug in a channel must not kill its worker
                log.exception("channel %s raised", self.channel.name)
                self.record(job, attempt, "failed", f"{type(exc).__name__}: {exc}"[:300])
                self.done(job, "failed")
                return
            else:
                self.record(job, attempt, "sent", None)
                self.done(job, "sent")
                return
