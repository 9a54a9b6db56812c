"""A test alert: one delivery on one configured channel, sent on demand (the webapp's
"Send a test alert" button) through the channel's real delivery code, to check that
the channel's settings, credentials and network path work before an anomaly needs them.

One attempt, no retries, no dedupe and no alert log row (it concerns no anomaly): the
caller gets the outcome at once, delivered or the channel's own error.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from skyline.alerting.base import Alert, DeliveryError, MemoryProgress
from skyline.alerting.channels import CHANNELS, make_channel
from skyline.events.anomaly import AnomalyEvent
from skyline.settings import Settings

METRIC = "skyline.test_alert"
log = logging.getLogger("skyline.alerters")


@dataclass(frozen=True)
class Outcome:
    channel: str
    delivered: bool
    message: str  # what was sent (or the channel's note), or the channel's error


def configured_channels(settings: Settings) -> list[str]:
    """Every channel an alert may go to: named by an [[alerts]] or [[boundary]] rule, or
    an instance table of a named channel ([alerters.webhooks.NAME] -> webhook-NAME)."""
    names = {rule.channel for rule in settings.alerts}
    for boundary in settings.boundary:
        names.update(boundary.channels)
    for _, spec in CHANNELS.items():
        if spec.named:
            tables = getattr(settings.alerters, spec.table_name) or {}
            names.update(f"{spec.name}-{name}" for name in tables)
    return sorted(names)


def sample_event(sender: str, now: float, host: str) -> AnomalyEvent:
    return AnomalyEvent(
        metric=METRIC, timestamp=int(now), value=0.0, source="test", algorithms_run=(),
        triggered=(), host=host,
        note=f"a test alert sent by {sender} from the Skyline webapp; no anomaly happened",
    )  # fmt: skip


def send(settings: Settings, channel: str, sender: str, now: float) -> Outcome:
    """Deliver one test alert on ``channel`` (a name from ``configured_channels``)."""
    event = sample_event(sender, now, settings.host_name)
    link = f"{settings.alerters.webapp_url.rstrip('/')}/alerts"
    alert = Alert(event, channel, "(test alert)", 0, link)
    try:
        note = make_channel(channel, settings.alerters).send(alert, MemoryProgress())
    except DeliveryError as exc:
        return Outcome(channel, False, str(exc)[:500] or type(exc).__name__)
    except Exception as exc:  # a channel bug must still answer the button, not a bare 500
        log.exception("test alert on %s failed unexpectedly", channel)
        return Outcome(channel, False, f"{type(exc).__name__}: {exc}"[:500])
    return Outcome(channel, True, note or f"sent {alert.summary()!r}")
