"""Per-channel rate limits of boundary alerts (Skyline's BOUNDARY_ALERTER_OPTS).

``[boundary_daemon] channel_limits`` allows at most ``limit`` boundary alerts per
channel in each fixed window of ``period`` seconds.  The count lives in Redis
(``boundary:rate:<channel>:<window start>``, INCR with a TTL of two windows), so
every alerter process shares it and a restart does not reset it.  An email-address
channel counts under ``smtp`` (the name its channel registers); a channel not listed
is not limited.
"""

from __future__ import annotations

import redis

from skyline.alerting.dedupe import alert_key
from skyline.events.anomaly import AnomalyEvent
from skyline.settings import Settings
from skyline.settings.alerting import ChannelLimit
from skyline.settings.extensions import counted_as
from skyline.store.keys import RedisKeys
from skyline.store.window import incr_window, window_start


def limit_for(limits: dict[str, ChannelLimit], channel: str) -> tuple[str, ChannelLimit | None]:
    """The name the channel is counted under, and its limit (None: unlimited)."""
    name = counted_as(channel)
    return name, limits.get(name)


def over_limit(
    client: redis.Redis,
    keys: RedisKeys,
    limits: dict[str, ChannelLimit],
    channel: str,
    now: float,
) -> bool:
    """Count one boundary alert on ``channel``; True when it is past the window's limit
    (the alert must then be dropped)."""
    name, limit = limit_for(limits, channel)
    if limit is None:
        return False
    key = keys.boundary_rate(name, window_start(now, limit.period))
    return incr_window(client, key, limit.period) > limit.limit


def rate_limited(client: redis.Redis, keys: RedisKeys, settings: Settings, channel: str,
                 event: AnomalyEvent, now: float) -> bool:  # fmt: skip
    """For the alerters, after claiming the dedupe key of an alert: True when it is a
    boundary alert past its channel's limit.  The claim is then released, so the next
    breach after the window may alert."""
    if event.source != "boundary":
        return False
    if not over_limit(client, keys, settings.boundary_daemon.channel_limits, channel, now):
        return False
    key = alert_key(keys, channel, event)
    if client.get(key) == event.id.encode():
        client.delete(key)
    return True
