"""The mirage daemon: re-judges analyzer anomalies over days before anyone is paged.

The analyzer XADDs an anomaly to ``{stream}:mirage`` when the metric's first matching
[[alerts]] rule has ``mirage_hours`` (skyline.events.routing).  Mirage reads that stream in
the consumer group ``mirage`` and, on a small thread pool (``[mirage] workers``,
at most ``max_inflight`` checks taken and unfinished), for each check:

- passes it on unjudged (``skyline.events.routing.onward``, counted as ``expired``) if it
  was queued more than ``max_check_age`` seconds ago: never dropped;
- reads ``mirage_hours`` of history at the rule's ``mirage_resolution`` or the rollup
  resolution (skyline.analysis.mirage.history);
- judges it (skyline.analysis.mirage.judge): cleared -> a ``not_anomalous`` verdict; confirmed
  -> ``skyline.events.routing.onward`` hands it to ionosphere or the alerts stream and
  publishes the verdict -- unless by then the check was queued more than
  ``max_check_age`` ago (a slow fetch): it is then passed on unconfirmed and counted
  as ``expired``, as above (mirage never clears an anomaly later than that).

An entry is acknowledged only after its verdict and hand-off are on their streams.
When Redis fails mid-check the entry stays pending and is re-read (own pending
first) once Redis answers; an unexpected error while judging confirms the anomaly
(it is alerted, never dropped) and is counted in ``errors``.  At stop, checks not
started are cancelled, the history fetches under way are cut (their sockets shut
down) and checks still running publish nothing: both stay pending and are taken
over (``claim_idle``) by the next mirage.  ``flush`` then waits for the running
checks (a connect under way, up to ``remote_connect_timeout``, is the longest part),
so the interpreter, which joins the pool's threads at exit, has none left to wait
for.  Counters: checks, cleared, confirmed, expired, malformed_entries,
history_source.<source>, fetch_failures, check_time, inflight.
"""

from __future__ import annotations

import time
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor, wait

from skyline.analysis.algorithms.prepare import is_counter, non_negative_derivative
from skyline.analysis.mirage.fetch import Stopped
from skyline.analysis.mirage.history import HistorySource
from skyline.analysis.mirage.judge import Judgement, JudgeOptions, judge
from skyline.events.anomaly import AnomalyEvent, VerdictEvent, publish_verdict
from skyline.events.routing import MIRAGE, Heartbeats, onward
from skyline.events.rules import route
from skyline.events.stream_daemon import StreamDaemon
from skyline.runtime.daemon import OUTAGES

Key = tuple[str, bytes]


class Abandoned(Exception):
    """A check still running when mirage stopped: it publishes nothing, stays pending."""


class Mirage(StreamDaemon):
    name = "mirage"

    def streams(self) -> list[str]:
        return [self.keys.mirage_stream()]

    def prepare(self) -> None:
        cfg = self.settings.mirage  # its algorithms are known: the settings checked them
        self.options = JudgeOptions.from_settings(self.settings)
        self.history = HistorySource(self.store, self.settings, self.counters)
        self.heartbeats = Heartbeats(self.redis, self.keys)
        self.pool = ThreadPoolExecutor(cfg.workers, thread_name_prefix="mirage-check")
        self.inflight: dict[Key, Future[None]] = {}

    def run_once(self) -> None:
        self.settle()
        room = self.settings.mirage.max_inflight - len(self.inflight)
        if room <= 0:
            self.stop_event.wait(0.05)
            return
        self.consumer.count = room
        entries = self.read(self.block_ms if not self.inflight else 50)
        fresh = [e for e in entries if (e[0], e[1]) not in self.inflight]
        with self.recovering(OUTAGES):  # an expired check not yet passed on: re-read it
            for stream, entry_id, fields in fresh:
                self.handle(stream, entry_id, fields)
        if entries and not fresh:  # only our own in-flight checks came back: wait for them
            self.stop_event.wait(0.05)
        self.counters.gauge("inflight", len(self.inflight))

    def settle(self) -> None:
        """Acknowledge finished checks; a check that hit an outage stays pending."""
        outage: BaseException | None = None
        for key, future in list(self.inflight.items()):
            if not future.done():
                continue
            del self.inflight[key]
            try:
                exc = future.exception()
            except CancelledError:  # cancelled at stop: left pending for the next mirage
                continue
            if exc is None:
                self.consumer.ack(*key)
            elif not isinstance(exc, Abandoned):
                outage = exc
        if outage is not None:
            self.consumer.recover()
            raise outage

    def handle(self, stream: str, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        event = self.event_of(stream, entry_id, fields)
        if event is None:
            return
        queued = int(entry_id.split(b"-")[0]) / 1000
        age = self.clock() - queued
        if age > self.settings.mirage.max_check_age:
            self.expire(event, age)
            self.consumer.ack(stream, entry_id)
            return
        self.inflight[(stream, entry_id)] = self.pool.submit(self.check, event, queued)

    def expire(self, event: AnomalyEvent, age: float) -> None:
        """A check too old to be judged (when taken) or to have its judgement trusted
        (once judged): passed on unconfirmed, as if mirage were down (an anomaly never
        vanishes because a stage was slow or away)."""
        limit = self.settings.mirage.max_check_age
        reason = f"expired after {age:.0f} s (max_check_age {limit} s): alerted unconfirmed"
        pipe = self.redis.pipeline(transaction=False)
        onward(pipe, self.keys, self.settings, event, MIRAGE, self.heartbeats, reason=reason)
        pipe.execute()
        self.counters.inc("expired")
        self.log.info("expired check of %s (%.0f s old): passed on unconfirmed", event.metric, age)

    def check(self, event: AnomalyEvent, queued: float) -> None:
        """Judge one anomaly queued at ``queued`` (epoch s) and queue the outcome (runs
        on a pool thread).  Raises for an outage (the entry is then re-read) and at stop
        (``Abandoned``: it stays pending)."""
        t0 = time.monotonic()
        self.counters.inc("checks")
        try:
            hours, judgement = self._judge(event)
        except OUTAGES:
            raise
        except Stopped as exc:  # its fetch was cut short by the stop: judge it again
            raise Abandoned(event.metric) from exc
        except Exception as exc:  # a bug must not swallow the anomaly: confirm it
            self.counters.inc("errors")
            self.log.exception("judging %s failed; confirming it", event.metric)
            hours, judgement = 0, Judgement(False, f"mirage could not judge ({type(exc).__name__})")
        if self.stop_event.is_set():
            raise Abandoned(event.metric)  # its fetch may have been cut short: judge it again
        age = self.clock() - queued
        if age > self.settings.mirage.max_check_age:  # judged too late (a slow fetch)
            self.expire(event, age)
            return
        pipe = self.redis.pipeline(transaction=False)
        if judgement.cleared:
            self._verdict(event, "not_anomalous", judgement.reason, judgement.detail, pipe)
        else:
            onward(pipe, self.keys, self.settings, event, MIRAGE, self.heartbeats,
                   reason=judgement.reason, detail=judgement.detail)  # fmt: skip
        pipe.execute()
        self.counters.inc("cleared" if judgement.cleared else "confirmed")
        self.counters.gauge("check_time", round(time.monotonic() - t0, 4))
        self.log.info("%s %s at %d over %d h: %s", "cleared" if judgement.cleared else "confirmed",
                      event.metric, event.timestamp, hours, judgement.reason)  # fmt: skip

    def _judge(self, event: AnomalyEvent) -> tuple[int, Judgement]:
        r = route(self.settings.alerts, event.metric, event.labels)
        hours = r.mirage_hours
        if not hours:
            return 0, Judgement(False, "the metric's alert rule has no mirage_hours any more")
        res = r.mirage_resolution or self.history.resolution
        window = self.history.window(event.metric, event.timestamp - hours * 3600, event.timestamp,
                                     res)  # fmt: skip
        series, counter = window.series, False
        if self.settings.analyzer.detect_counters and is_counter(series):
            series, counter = non_negative_derivative(series), True  # as the analyzer does
        judgement = judge(series, hours, res, self.options)
        detail = {**judgement.detail, "source": window.source, "counter": counter}
        reason = f"{judgement.reason}; {window.note}" if window.note else judgement.reason
        return hours, Judgement(judgement.cleared, reason, detail)

    def _verdict(self, event: AnomalyEvent, verdict: str, reason: str, detail: dict,
                 client: object = None) -> None:  # fmt: skip
        v = VerdictEvent(event.id, event.metric, event.timestamp, MIRAGE, verdict, reason, detail,
                         time.time())  # fmt: skip
        publish_verdict(client or self.redis, self.keys, v, self.settings.analyzer.stream_maxlen)  # type: ignore[arg-type]

    def flush(self) -> None:
        """Cancel the checks not started, cut the fetches under way (the running checks
        then publish nothing: both stay pending, for the next mirage), wait for the
        running checks to end and acknowledge the finished ones."""
        if not hasattr(self, "pool"):
            return
        self.pool.shutdown(wait=False, cancel_futures=True)
        cut = self.history.stop()
        running = [f for f in self.inflight.values() if not f.done()]
        limit = self.settings.mirage.remote_connect_timeout + 1.0
        left = wait(running, timeout=limit).not_done
        self.log.info("stop: %d fetches cut, %d checks running, %d still running after %g s",
                      cut, len(running), len(left), limit)  # fmt: skip
        try:
            self.settle()
        except OUTAGES as exc:
            self.log.warning("stop: %d checks stay pending (%s)", len(self.inflight), exc)
