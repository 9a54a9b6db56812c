"""Thunder's failing-channel event: an alert channel whose every attempt has failed for
``[alerters] channel_failing_after`` seconds is raised as an event of the metric
``skyline.thunder.alerters.<channel>.failing``.  The alerters deliver it on every other
channel (``remaining_channels``), so a broken Slack integration pages through PagerDuty,
email or a webhook instead of going unnoticed.
"""

from __future__ import annotations

import re
import time

from skyline.events.anomaly import AnomalyEvent
from skyline.events.rules import Route, route
from skyline.settings.alerting import AlertRule

PREFIX = "skyline.thunder.alerters."
_FAILING = re.compile(r"^skyline\.thunder\.alerters\.(.+)\.failing$")
EXPIRATION = 3600  # at most one failing-channel alert per channel and hour


def channel_failing_event(channel: str, since: float, host: str, duration: int) -> AnomalyEvent:
    now = time.time()
    return AnomalyEvent(
        metric=f"{PREFIX}{channel}.failing",
        timestamp=int(now),
        value=round(now - since, 1),  # seconds the channel has been failing
        source="thunder",
        algorithms_run=("channel_delivery",),
        triggered=("channel_delivery",),
        full_duration=duration,
        detected_at=now,
        host=host,
    )


def failing_channel(metric: str) -> str | None:
    """The channel a failing-channel event is about, or None for any other metric."""
    m = _FAILING.match(metric)
    return m.group(1) if m else None


def remaining_channels(rules: list[AlertRule], metric: str, failing: str) -> Route:
    """The [[alerts]] rules matching the event, else every channel any rule names; never
    the failing channel itself."""
    matched = route(rules, metric)
    if matched.channels:
        chosen = matched.channels
    else:
        seen: dict[str, tuple[str, int, str]] = {}
        for rule in rules:
            seen.setdefault(rule.channel, (rule.channel, EXPIRATION, rule.pattern))
        chosen = tuple(seen.values())
    return Route(tuple(c for c in chosen if c[0] != failing), None)
