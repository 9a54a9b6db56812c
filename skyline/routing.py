"""Where an anomaly goes after it is detected, decided by the daemon that detected it.

Every detection is published on the anomalies stream (panorama records it).  Then,
if an [[alerts]] rule matches the metric:

- a rule with mirage hours sends an analyzer anomaly to mirage for confirmation over
  the longer window — unless mirage has no live heartbeat, in which case it is
  alerted directly (the design's rule: an anomaly never vanishes because a
  downstream stage is down);
- otherwise it goes to the alerts stream.

Each decision is also published as a verdict event, which panorama adds to the
anomaly's verdict trail.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import redis

from skyline.alert_rules import route
from skyline.events import AnomalyEvent, VerdictEvent, publish, publish_verdict
from skyline.redis_keys import RedisKeys
from skyline.settings import Settings


def forward(
    pipe: redis.client.Pipeline,
    keys: RedisKeys,
    settings: Settings,
    event: AnomalyEvent,
    alive: Callable[[str], bool],
) -> VerdictEvent:
    """Queue the event's hand-off on ``pipe``; returns the verdict (also queued)."""
    maxlen = settings.analyzer.stream_maxlen
    publish(pipe, keys, event, maxlen)
    r = route(settings.alerts, event.metric)
    if not r.alerting:
        verdict, reason = "no_alert_rule", "no [[alerts]] rule matches the metric"
    elif r.mirage_hours and event.source == "analyzer" and alive("mirage"):
        publish(pipe, keys, event, maxlen, stream=keys.mirage_stream())
        verdict, reason = "sent_to_mirage", f"mirage re-checks it over {r.mirage_hours} h"
    else:
        publish(pipe, keys, event, maxlen, stream=keys.alerts_stream())
        verdict = "sent_to_alerters"
        reason = (
            "mirage is not running: alerted directly"
            if r.mirage_hours and event.source == "analyzer"
            else ""
        )
    v = VerdictEvent(event.id, event.metric, event.timestamp, event.source, verdict, reason,
                     {"channels": [c for c, _, _ in r.channels]}, time.time())  # fmt: skip
    publish_verdict(pipe, keys, v, maxlen)
    return v


class Heartbeats:
    """Which daemons have a live heartbeat, asked at most once per ``ttl`` seconds."""

    def __init__(self, client: redis.Redis, keys: RedisKeys, ttl: float = 1.0) -> None:
        self.redis, self.keys, self.ttl = client, keys, ttl
        self._cache: dict[str, tuple[float, bool]] = {}

    def __call__(self, daemon: str) -> bool:
        now = time.monotonic()
        hit = self._cache.get(daemon)
        if hit is None or now - hit[0] > self.ttl:
            hit = (now, bool(self.redis.exists(self.keys.heartbeat(daemon))))
            self._cache[daemon] = hit
        return hit[1]
