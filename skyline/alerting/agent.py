"""The alerters daemon: the alerts stream -> channels, once per (channel, metric) per
expiration, with retries, every attempt in the alert log.

For each alert (an anomaly event on the alerts stream) it resolves the channels of the
matching [[alerts]] rules, skips muted metrics, and claims the dedupe key
``alert:last:<channel>:<metric>`` (SET NX with the rule's expiration, holding the
event id).  A key held by another event means "already alerted within the
expiration": suppressed.  A key holding this event's id means a re-delivery after a
crash: delivered unless it is marked sent.  Deliveries run on per-channel workers
under one retry policy (skyline.alerting.retry) with their progress durable in Redis
(skyline.alerting.pending), so a restart resumes them.  The stream entry is kept
claimed while its deliveries retry and acknowledged when every channel has finished;
then a verdict (alerted, failed, suppressed, muted) goes to the verdicts stream, with
the channels that failed in its reason and detail (the UI shows
``alerted (slack failed)``).  A channel failing for ``channel_failing_after`` raises
thunder's failing-channel event on the other channels.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import cast

from redis.typing import StreamIdT
from sqlalchemy import Engine

from skyline.alerting.alert_log import AlertLogWriter
from skyline.alerting.base import Alert
from skyline.alerting.channels import graph_link_ttl, make_channel, wants_graph
from skyline.alerting.dedupe import alert_key
from skyline.alerting.delivery import ChannelWorker, Job
from skyline.alerting.graph import render_png
from skyline.alerting.mutes import Mutes
from skyline.alerting.pending import Delivery
from skyline.alerting.rate_limits import rate_limited
from skyline.alerting.retry import RetryPolicy, channel_deadline
from skyline.alerting.thunder.channels import (
    channel_failing_event,
    failing_channel,
    remaining_channels,
)
from skyline.events.anomaly import (
    AnomalyEvent,
    VerdictEvent,
    failed_channels,
    publish,
    publish_verdict,
)
from skyline.events.boundary_rules import boundary_route
from skyline.events.rules import Route, route
from skyline.events.stream_daemon import StreamDaemon
from skyline.runtime.daemon import OUTAGES
from skyline.store import graph_images

MAX_INFLIGHT = 1000


@dataclass
class Inflight:
    event: AnomalyEvent
    remaining: int
    outcomes: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


class Alerters(StreamDaemon):
    name = "alerters"

    def streams(self) -> list[str]:
        return [self.keys.alerts_stream()]

    def prepare(self) -> None:
        self.engine: Engine = self.open_database()
        self.mutes = Mutes(self.engine)
        self.alert_log = AlertLogWriter(self.engine, self.redis, self.keys, self.counters,
                                        self.log)  # fmt: skip
        self.workers: dict[str, ChannelWorker] = {}
        self.completions: queue.SimpleQueue[tuple[Job, str]] = queue.SimpleQueue()
        self.inflight: dict[tuple[str, bytes], Inflight] = {}
        self.workers_stop = threading.Event()
        self.touched_at = 0.0

    def run_once(self) -> None:
        self._settle_completions()
        self._keep_claimed()
        self.alert_log.drain()
        if len(self.inflight) >= MAX_INFLIGHT:
            self.stop_event.wait(0.1)
            return
        block = self.block_ms if not self.inflight else 100
        with self.recovering():
            for stream, entry_id, fields in self.consumer.read(block, held=self.inflight):
                if (stream, entry_id) not in self.inflight:
                    self.handle(stream, entry_id, fields)
        self.counters.gauge("inflight", len(self.inflight))

    def handle(self, stream: str, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        event = self.event_of(stream, entry_id, fields)
        if event is None:
            return
        state = Inflight(event, 0)
        muted_by = self.mutes.muted_by(event.metric)
        jobs = []
        for channel, expiration, pattern in self._route(event).channels:
            if muted_by:
                state.outcomes[channel] = "muted"
                self._log_row(event, channel, pattern, 0, "muted", f"muted by {muted_by!r}")
                continue
            job = self._decide(state, stream, entry_id, channel, expiration, pattern)
            if job is not None:
                jobs.append(job)
        state.remaining = len(jobs)
        self.inflight[(stream, entry_id)] = state
        for job in jobs:
            self._worker(job.alert.channel).jobs.put(job)
        if not jobs:
            self._finish(stream, entry_id)

    def _route(self, event: AnomalyEvent) -> Route:
        if event.source == "boundary":  # channels and expiry from the [[boundary]] rules
            return boundary_route(self.settings, event)
        failing = failing_channel(event.metric) if event.source == "thunder" else None
        if failing:  # a channel keeps failing: say so on the others
            return remaining_channels(list(self.settings.alerts), event.metric, failing)
        return route(self.settings.alerts, event.metric, event.labels)

    def _decide(self, state: Inflight, stream: str, entry_id: bytes, channel: str,
                expiration: int, pattern: str) -> Job | None:  # fmt: skip
        """A job to deliver, or None with the channel's outcome recorded in ``state``."""
        event = state.event
        claim = self._claim(channel, event, expiration)
        if claim == "deliver" and rate_limited(self.redis, self.keys, self.settings, channel,
                                               event, self.clock()):  # fmt: skip
            claim = "rate_limited"
            self.counters.inc("rate_limited")
            self._log_row(event, channel, pattern, 0, claim, "over the boundary rate limit")
        if claim == "deliver":
            delivery = self._delivery(channel, event)
            if delivery.status == "pending":
                return Job(stream, entry_id, self._alert(event, channel, pattern, expiration),
                           delivery)  # fmt: skip
            claim = delivery.status  # finished before a restart: not sent again
            self._settle_key(channel, event, claim)
            if delivery.error:
                state.errors[channel] = delivery.error
        state.outcomes[channel] = claim
        if claim == "suppressed":
            self._log_row(event, channel, pattern, 0, "suppressed", "alerted within expiration")
        return None

    def _delivery(self, channel: str, event: AnomalyEvent) -> Delivery:
        """The durable record of this alert on this channel, new or left by a previous
        life of the daemon."""
        cfg = self.settings.alerters
        lease = max(cfg.claim_idle, 6 * cfg.timeout)
        delivery = Delivery(self.redis, self.keys, channel, event.id, lease)
        return delivery.open(time.time(), channel_deadline(cfg, channel))

    def _keep_claimed(self) -> None:
        """Entries whose deliveries are still retrying stay ours: claiming them again
        resets their idle time, so another alerter takes them over only if we die."""
        now = time.monotonic()
        if not self.inflight or now - self.touched_at < self.settings.alerters.claim_idle / 3:
            return
        self.touched_at = now
        by_stream: dict[str, list[StreamIdT]] = {}
        for stream, entry_id in self.inflight:
            by_stream.setdefault(stream, []).append(entry_id)
        for stream, ids in by_stream.items():
            self.redis.xclaim(stream, self.consumer.group, self.consumer.consumer, 0, ids,
                              justid=True)  # fmt: skip

    def _claim(self, channel: str, event: AnomalyEvent, expiration: int) -> str:
        key = alert_key(self.keys, channel, event)
        if expiration and self.redis.set(key, event.id, nx=True, ex=expiration):
            return "deliver"
        if not expiration:
            return "deliver"
        held = (cast(bytes | None, self.redis.get(key)) or b"").decode()  # binary client
        if held == event.id:
            return "deliver"  # our own claim: a re-delivery after a crash
        if held == f"{event.id}|sent":
            return "sent"
        return "suppressed"

    def _alert(self, event: AnomalyEvent, channel: str, pattern: str, expiration: int) -> Alert:
        cfg = self.settings.alerters
        public = cfg.webapp_url.rstrip("/")
        link = f"{public or self.settings.webapp_base_url}/anomaly/{event.id}"
        if not (wants_graph(channel) and cfg.graph):
            return Alert(event, channel, pattern, expiration, link)
        # A channel that links its graph (link_ttl > 0) needs it served at webapp_url:
        # without one the default (the webapp's bind address) is rarely an address
        # Slack's servers can reach, and a link they cannot fetch would fail the message;
        # then no graph is rendered at all.
        link_ttl = graph_link_ttl(channel, cfg)
        if link_ttl and not public:
            return Alert(event, channel, pattern, expiration, link)
        png = self._graph(event)
        url = None
        if png and link_ttl:  # stored under a capability token, served at /graphs/<token>.png
            url = f"{public}/graphs/{graph_images.save(self.redis, self.keys, png, link_ttl)}.png"
        return Alert(event, channel, pattern, expiration, link, png, url)

    def _graph(self, event: AnomalyEvent) -> bytes | None:
        series = self.store.read(event.metric)
        return (
            render_png(series, event.metric, event.timestamp, event.value) if len(series) else None
        )

    def _worker(self, channel: str) -> ChannelWorker:
        worker = self.workers.get(channel)
        if worker is None:
            cfg = self.settings.alerters
            worker = ChannelWorker(make_channel(channel, cfg), RetryPolicy.of(cfg, channel),
                                   record=self._record,
                                   done=lambda job, status: self.completions.put((job, status)),
                                   stop=self.workers_stop,
                                   failing_after=cfg.channel_failing_after,
                                   on_failing=self._raise_failing,
                                   counters=self.counters)  # fmt: skip
            worker.start()
            self.workers[channel] = worker
        return worker

    def _raise_failing(self, channel: str, since: float, error: str) -> None:
        """Called on a worker thread: thunder's failing-channel event, recorded by
        panorama and alerted on the other channels."""
        self.counters.inc(f"channel.{channel}.failing_events")
        self.log.error("channel %s has failed every attempt since %.0f: %s", channel, since, error)
        event = channel_failing_event(channel, since, self.settings.host_name,
                                      int(self.settings.alerters.channel_failing_after))  # fmt: skip
        maxlen = self.settings.analyzer.stream_maxlen
        pipe = self.redis.pipeline(transaction=False)
        publish(pipe, self.keys, event, maxlen)
        publish(pipe, self.keys, event, maxlen, stream=self.keys.alerts_stream())
        pipe.execute()

    def _record(self, job: Job, attempt: int, status: str, error: str | None) -> None:
        """Called on a worker thread for every attempt."""
        a = job.alert
        self.counters.inc(f"attempts.{status}")
        per_channel = {"sent": "sent", "retrying": "retried", "failed": "failed"}.get(status)
        if per_channel:
            self.counters.inc(f"channel.{a.channel}.{per_channel}")
        try:  # written now, or queued in Redis and written later (skyline.alerting.alert_log)
            self._log_row(a.event, a.channel, a.rule_pattern, attempt, status, error)
        except OUTAGES:  # Redis is down too: the attempt itself matters more than its row
            self.counters.inc("alert_log_failures")
            self.log.exception("could not record an alert attempt for %s", a.event.id)
        if error:
            self.log.warning(
                "%s alert for %s, attempt %d: %s", a.channel, a.event.metric, attempt, error
            )

    def _log_row(self, event: AnomalyEvent, channel: str, pattern: str, attempt: int,
                 status: str, error: str | None) -> None:  # fmt: skip
        self.alert_log.write(event.id, event.metric, channel, pattern, attempt, status, error)

    def _settle_completions(self) -> None:
        while True:
            try:
                job, status = self.completions.get_nowait()
            except queue.Empty:
                return
            self._settle_key(job.alert.channel, job.alert.event, status)
            state = self.inflight.get((job.stream, job.entry_id))
            if state is None:
                continue
            state.outcomes[job.alert.channel] = status
            if job.delivery.error:
                state.errors[job.alert.channel] = job.delivery.error
            state.remaining -= 1
            if state.remaining <= 0:
                self._finish(job.stream, job.entry_id)

    def _settle_key(self, channel: str, event: AnomalyEvent, status: str) -> None:
        key = alert_key(self.keys, channel, event)
        if status == "sent":
            self.redis.set(key, f"{event.id}|sent", xx=True, keepttl=True)
            self.counters.inc("alerts_sent")
        elif self.redis.get(key) == event.id.encode():
            self.redis.delete(key)  # failed: let the next anomaly try again

    def _finish(self, stream: str, entry_id: bytes) -> None:
        state = self.inflight.pop((stream, entry_id))
        outcomes = state.outcomes
        verdict = next((v for v in ("alerted", "failed", "suppressed", "rate_limited", "muted")
                        if _VERDICT_OF[v] in outcomes.values()), "no_alert_rule")  # fmt: skip
        detail: dict = {"channels": outcomes}
        failed = failed_channels(detail)
        if state.errors:
            detail["errors"] = {c: state.errors[c][:300] for c in failed if c in state.errors}
        reason = f"{', '.join(failed)} failed" if failed else ""
        e = state.event
        publish_verdict(self.redis, self.keys, VerdictEvent(
            e.id, e.metric, e.timestamp, "alerters", verdict, reason, detail, time.time(),
        ), self.settings.analyzer.stream_maxlen)  # fmt: skip
        self.consumer.ack(stream, entry_id)
        self.counters.inc(f"verdicts.{verdict}")

    def flush(self) -> None:
        if hasattr(self, "workers_stop"):
            self.workers_stop.set()
            for worker in self.workers.values():
                worker.join(5)
            self._settle_completions()


_VERDICT_OF = {"alerted": "sent", "failed": "failed", "suppressed": "suppressed",
               "rate_limited": "rate_limited", "muted": "muted"}  # fmt: skip
