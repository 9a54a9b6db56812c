"""What every channel receives, and the one interface a channel implements."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

from skyline.events.anomaly import AnomalyEvent


class DeliveryError(Exception):
    """The attempt failed and may succeed if retried (timeout, 5xx, 429, connection refused).

    ``retry_after``: the server asked to wait this many seconds (HTTP 429 Retry-After)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(DeliveryError):
    """Retrying cannot help (4xx, channel not configured): fail at once."""


class Progress(Protocol):
    """What a multi-step delivery already did, kept durably across retries and restarts:
    ``get(step)`` is the value saved by ``save(step, value)`` in an earlier attempt (Slack's
    message ts, PagerDuty's dedup_key, the email's Message-ID) or None."""

    def get(self, step: str) -> str | None: ...

    def save(self, step: str, value: str) -> None: ...


class MemoryProgress:
    """Progress kept in memory only: for one-off sends outside the alerters daemon."""

    def __init__(self) -> None:
        self.steps: dict[str, str] = {}

    def get(self, step: str) -> str | None:
        return self.steps.get(step)

    def save(self, step: str, value: str) -> None:
        self.steps[step] = value


@dataclass(frozen=True)
class Alert:
    event: AnomalyEvent
    channel: str
    rule_pattern: str
    expiration: int
    link: str  # the anomaly in the webapp
    graph_png: bytes | None = None
    graph_url: str | None = None  # the graph served by the webapp, for a channel that links it

    @property
    def title(self) -> str:
        return f"[Skyline alert] {self.event.source} ALERT - {self.event.metric}"

    @property
    def when(self) -> str:
        return dt.datetime.fromtimestamp(self.event.timestamp, dt.UTC).strftime(
            "%Y-%m-%d %H:%M:%S UTC"
        )

    @property
    def labels(self) -> str:
        """A labelled metric's label set, ``{code="500",job="api"}`` (``""`` for none)."""
        return label_text(self.event.labels)

    def summary(self) -> str:
        e = self.event
        labels = f" {self.labels}" if self.labels else ""
        if e.note:
            return f"{e.metric}{labels} at {self.when}: {e.note}"
        if e.source == "boundary":
            return f"{e.metric}{labels} = {e.value!r} at {self.when}; " + "; ".join(
                _boundary_reason(a, e.scores) for a in e.triggered
            )
        return (f"{e.metric}{labels} = {e.value!r} at {self.when}; anomalous to "
                f"{', '.join(e.triggered)} ({len(e.triggered)} of {len(e.algorithms_run)} run)")  # fmt: skip


def label_text(labels: dict[str, str]) -> str:
    """``{code="500",job="api"}``: the labels other than ``__name__``, sorted, bounded."""
    parts = [f'{k}="{v[:200]}"' for k, v in sorted(labels.items()) if k != "__name__"]
    return "{" + ",".join(parts)[:1000] + "}" if parts else ""


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
    """A way to deliver alerts.  ``send`` raises DeliveryError (retried) or PermanentError;
    a step that succeeded is saved in ``progress`` and skipped when the alert is retried.
    It may return a note for the alert log (a delivered alert whose graph is missing)."""

    name: str

    def send(self, alert: Alert, progress: Progress) -> str | None: ...
