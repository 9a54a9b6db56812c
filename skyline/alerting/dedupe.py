"""The alerters' dedupe key: one alert per channel and metric until the key expires."""

from __future__ import annotations

from skyline.events.anomaly import AnomalyEvent
from skyline.store.keys import RedisKeys


def alert_key(keys: RedisKeys, channel: str, event: AnomalyEvent) -> str:
    """The alerters' dedupe key: per channel and metric, and for boundary alerts per
    algorithm too (so a greater_than and a less_than alert of one metric do not
    suppress each other)."""
    if event.source == "boundary":
        return keys.boundary_alert_sent(channel, "+".join(sorted(event.triggered)), event.metric)
    return keys.alert_sent(channel, event.metric)
