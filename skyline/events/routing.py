"""Where an anomaly goes after a stage has judged it, decided by that stage.

Every detection is published on the anomalies stream (panorama records it).  Then,
if an [[alerts]] rule matches the metric, the anomaly walks the design's pipeline

    analyzer -> mirage (rule has mirage hours) -> ionosphere (metric has profiles)
             -> alerts stream -> alerters

skipping each stage that does not apply.  A stage with no live heartbeat is skipped
too (the design's rule: an anomaly never vanishes because a downstream stage is
down), and the skip is written in the verdict's reason.  Boundary anomalies carry
their own channels (the [[boundary]] rules) and go straight to the alerts stream.

Each decision is also published as a verdict event, which panorama adds to the
anomaly's verdict trail.  The event keeps its id through every stage, so the whole
trail belongs to one anomaly.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Protocol, cast

import redis

from skyline.events.anomaly import AnomalyEvent, VerdictEvent, publish, publish_verdict
from skyline.events.rules import route
from skyline.settings import Settings
from skyline.store.keys import RedisKeys
from skyline.store.labels import NAME_LABEL, LabelIndex

# The stages after detection, in pipeline order.
MIRAGE, IONOSPHERE, ALERTERS = "mirage", "ionosphere", "alerters"


class Downstream(Protocol):
    """What routing asks about the rest of the pipeline."""

    def alive(self, daemon: str) -> bool: ...

    def has_profiles(self, metric: str) -> bool: ...

    def labels(self, metric: str) -> dict[str, str]: ...


def forward(
    pipe: redis.client.Pipeline,
    keys: RedisKeys,
    settings: Settings,
    event: AnomalyEvent,
    downstream: Downstream,
) -> VerdictEvent:
    """A new detection: publish it and queue its first hand-off on ``pipe``.  A labelled
    metric's event carries its label set from here on (rules match it, alerts show it)."""
    if not event.labels:
        labels = downstream.labels(event.metric)
        if set(labels) - {NAME_LABEL}:
            event = replace(event, labels=labels)
    publish(pipe, keys, event, settings.analyzer.stream_maxlen)
    if event.source == "boundary":
        return _send(pipe, keys, settings, event, event.source, ALERTERS, "sent_to_alerters",
                     "boundary rules name their own channels", {})  # fmt: skip
    return onward(pipe, keys, settings, event, event.source, downstream)


def onward(
    pipe: redis.client.Pipeline,
    keys: RedisKeys,
    settings: Settings,
    event: AnomalyEvent,
    stage: str,
    downstream: Downstream,
    reason: str = "",
    detail: dict[str, Any] | None = None,
) -> VerdictEvent:
    """``stage`` found ``event`` anomalous: queue it for the next stage that applies.
    ``detail`` (the stage's evidence) goes into the verdict with the channels."""
    r = route(settings.alerts, event.metric, event.labels)
    channels = {**(detail or {}), "channels": [c for c, _, _ in r.channels]}
    if not r.alerting:
        return _send(pipe, keys, settings, event, stage, None, "no_alert_rule",
                     "no [[alerts]] rule matches the metric", channels)  # fmt: skip
    skipped: list[str] = []
    if stage == "analyzer" and r.mirage_hours:
        if downstream.alive(MIRAGE):
            why = f"mirage re-checks it over {r.mirage_hours} h"
            return _send(pipe, keys, settings, event, stage, MIRAGE, "sent_to_mirage",
                         _join(reason, why), channels)  # fmt: skip
        skipped.append("mirage is not running")
    if stage in ("analyzer", MIRAGE) and downstream.has_profiles(event.metric):
        if downstream.alive(IONOSPHERE):
            why = "the metric has features profiles"
            return _send(pipe, keys, settings, event, stage, IONOSPHERE, "sent_to_ionosphere",
                         _join(reason, why, *skipped), channels)  # fmt: skip
        skipped.append("ionosphere is not running")
    if skipped:
        skipped[-1] += ": alerted directly"
    return _send(pipe, keys, settings, event, stage, ALERTERS, "sent_to_alerters",
                 _join(reason, *skipped), channels)  # fmt: skip


def _send(pipe: redis.client.Pipeline, keys: RedisKeys, settings: Settings, event: AnomalyEvent,
          stage: str, to: str | None, verdict: str, reason: str, detail: dict[str, Any]) -> VerdictEvent:  # fmt: skip
    maxlen = settings.analyzer.stream_maxlen
    if to is not None:
        publish(pipe, keys, event, maxlen, stream=_STREAMS[to](keys))
    v = VerdictEvent(event.id, event.metric, event.timestamp, stage, verdict, reason, detail,
                     time.time())  # fmt: skip
    publish_verdict(pipe, keys, v, maxlen)
    return v


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


_STREAMS = {
    MIRAGE: RedisKeys.mirage_stream,
    IONOSPHERE: RedisKeys.ionosphere_stream,
    ALERTERS: RedisKeys.alerts_stream,
}


class Heartbeats:
    """The live ``Downstream``: which daemons have a live heartbeat (asked at most once
    per ``ttl`` seconds), which metrics have enabled features profiles (the
    ionosphere metrics set, kept by whoever creates, enables or disables a profile) and
    each metric's label set (the label index)."""

    def __init__(self, client: redis.Redis, keys: RedisKeys, ttl: float = 1.0) -> None:
        self.redis, self.keys, self.ttl = client, keys, ttl
        self._cache: dict[str, tuple[float, bool]] = {}
        self._labels = LabelIndex(client, keys)
        self._batch_labels: dict[str, dict[str, str]] = {}
        self._batch_profiles: dict[str, bool] = {}
        self._batch_at = -math.inf

    def prefetch(self, metrics: Sequence[str]) -> None:
        """Read the label sets and profile flags of the metrics about to be forwarded
        in two round trips, not two per event (a burst of anomalies in an outage).
        The answers are used for ``ttl`` seconds, as ``alive``'s are."""
        names = list(dict.fromkeys(metrics))
        self._batch_labels = self._labels.get_many(names)
        flags = self.redis.smismember(self.keys.ionosphere_metrics(), names) if names else []
        self._batch_profiles = dict(zip(names, map(bool, cast(list[int], flags)), strict=True))
        self._batch_at = time.monotonic()

    def _fresh(self) -> bool:
        return time.monotonic() - self._batch_at <= self.ttl

    def alive(self, daemon: str) -> bool:
        now = time.monotonic()
        hit = self._cache.get(daemon)
        if hit is None or now - hit[0] > self.ttl:
            hit = (now, bool(self.redis.exists(self.keys.heartbeat(daemon))))
            self._cache[daemon] = hit
        return hit[1]

    def has_profiles(self, metric: str) -> bool:
        known = self._batch_profiles.get(metric) if self._fresh() else None
        if known is not None:
            return known
        return bool(self.redis.sismember(self.keys.ionosphere_metrics(), metric))

    def labels(self, metric: str) -> dict[str, str]:
        """The metric's label set (the label index's, else what its name shows)."""
        known = self._batch_labels.get(metric) if self._fresh() else None
        return dict(known) if known is not None else self._labels.get(metric)
