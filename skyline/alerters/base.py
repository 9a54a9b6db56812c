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
        if e.source == "boundary":
            return f"{e.metric} = {e.value!r} at {self.when}; " + "; ".join(
                _boundary_reason(a, e.scores) for a in e.triggered
            )
        return (f"{e.metric} = {e.value!r} at {self.when}; anomalous to "
                f"{', '.join(e.triggered)} ({len(e.triggered)} of {len(e.algorithms_run)} run)")  # fmt: skip


_BOUNDARY_TESTS = {"greater_than": "above its limit", "less_than": "below its limit"}


def _boundary_reason(algorithm: str, scores: dict[str, float]) -> str:
    """``greater_than: above its limit 100 (3 consecutive breaches)`` from the event's scores."""
    limit, breaches = scores.get(f"{algorithm}.limit"), scores.get(f"{algorithm}.breaches")
    what = _BOUNDARY_TESTS.get(algorithm, "dropped off a cliff" if "cliff" in algorithm else "")
    text = f"{algorithm}: {what}" if what else algorithm
    if limit is not None and algorithm in _BOUNDARY_TESTS:
        text += f" {limit:g}"
    if breaches is not None:
        text += f" ({breaches:g} consecutive breach{'' if breaches == 1 else 'es'})"
    return text


class Channel(Protocol):
    """A way to deliver alerts.  ``send`` raises DeliveryError or PermanentError."""

    name: str

    def send(self, alert: Alert) -> None: ...
