"""What every channel receives, and the one interface a channel implements."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

from skyline.events import AnomalyEvent


class DeliveryError(Exception):
    """The attempt failed and may succeed if retried (timeout, 5xx, connection refused)."""


class PermanentError(DeliveryError):
    """Retrying cannot help (4xx, channel not configured): fail at once."""


@dataclass(frozen=True)
class Alert:
    event: AnomalyEvent
    channel: str
    rule_pattern: str
    expiration: int
    link: str  # the anomaly in the webapp
    graph_png: bytes | None = None

    @property
    def title(self) -> str:
        return f"[Skyline alert] {self.event.source} ALERT - {self.event.metric}"

    @property
    def when(self) -> str:
        return dt.datetime.fromtimestamp(self.event.timestamp, dt.UTC).strftime(
            "%Y-%m-%d %H:%M:%S UTC"
        )

    def summary(self) -> str:
        e = self.event
        return (f"{e.metric} = {e.value!r} at {self.when}; anomalous to "
                f"{', '.join(e.triggered)} ({len(e.triggered)} of {len(e.algorithms_run)} run)")  # fmt: skip


class Channel(Protocol):
    """A way to deliver alerts.  ``send`` raises DeliveryError or PermanentError."""

    name: str

    def send(self, alert: Alert) -> None: ...
