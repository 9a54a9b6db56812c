"""Events handed between daemons on Redis Streams.

An ``AnomalyEvent`` is what the analyzer (and later mirage and boundary) emits on
the anomalies stream.  Its ``id`` is the idempotency key every later stage uses
(panorama's ``anomalies.event_id`` is unique): the same detection re-emitted after
a crash is recognised, not recorded twice.  The event travels as one JSON field so
that adding fields never breaks an older consumer.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, cast

import redis
from redis.typing import EncodableT, FieldT

from skyline.store.keys import RedisKeys

SCHEMA = 1


def event_id(source: str, metric: str, timestamp: int) -> str:
    digest = hashlib.sha256(metric.encode()).hexdigest()[:24]
    return f"{source}:{timestamp}:{digest}"


@dataclass(frozen=True)
class AnomalyEvent:
    metric: str
    timestamp: int
    value: float
    source: str
    algorithms_run: tuple[str, ...]
    triggered: tuple[str, ...]
    scores: dict[str, float] = field(default_factory=dict)
    full_duration: int = 86400
    detected_at: float = 0.0
    host: str = ""
    note: str = ""  # what a human should read first, when the numbers do not say it
    labels: dict[str, str] = field(default_factory=dict)  # a labelled metric's label set

    @property
    def id(self) -> str:
        """``source:timestamp:hash of the metric name`` — bounded (names may be 1,024
        characters) and the same for the same detection, however often it is emitted."""
        return event_id(self.source, self.metric, self.timestamp)

    def to_fields(self) -> dict[FieldT, EncodableT]:
        body = _shallow(self)  # asdict deep-copies every score and vote, to be dumped
        body["schema"] = SCHEMA
        return {"id": self.id, "event": json.dumps(body, separators=(",", ":"))}

    @classmethod
    def from_fields(cls, fields: dict[bytes, bytes]) -> AnomalyEvent:
        """Parse a stream entry; raises ValueError for an entry that is not one of ours."""
        try:
            body = _json_object(fields[b"event"])
            body.pop("schema", None)
            body["algorithms_run"] = tuple(body["algorithms_run"])
            body["triggered"] = tuple(body["triggered"])
            event = cls(**body)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not an anomaly event: {exc}") from None
        problem = _bad_field(event)
        if problem:
            raise ValueError(f"not an anomaly event: {problem}")
        return event


def _shallow(event: AnomalyEvent) -> dict[str, Any]:
    """An anomaly event's fields as a dict, for ``json.dumps`` (its values are JSON
    types already: numbers, strings, tuples and dicts of them)."""
    return {f.name: getattr(event, f.name) for f in fields(event)}


def _json_object(raw: bytes) -> dict[str, Any]:
    """A stream entry's JSON body; TypeError when it is not an object."""
    body = json.loads(raw)
    if not isinstance(body, dict):
        raise TypeError(f"a JSON {type(body).__name__}, not an object")
    return body


def _bad_field(e: AnomalyEvent) -> str:
    """What is wrong with a parsed event's field types, or "" (JSON can hold anything)."""
    if not isinstance(e.metric, str) or not e.metric:
        return "metric must be a non-empty string"
    if not isinstance(e.source, str):
        return "source must be a string"
    if isinstance(e.timestamp, bool) or not isinstance(e.timestamp, int):
        return "timestamp must be an integer"
    if isinstance(e.value, bool) or not isinstance(e.value, int | float):
        return "value must be a number"
    if not all(isinstance(a, str) for a in (*e.algorithms_run, *e.triggered)):
        return "algorithm names must be strings"
    if not isinstance(e.note, str):
        return "note must be a string"
    if not isinstance(e.scores, dict) or not isinstance(e.full_duration, int):
        return "scores must be an object and full_duration an integer"
    if not isinstance(e.labels, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in e.labels.items()
    ):
        return "labels must be an object of strings"
    return ""


@dataclass(frozen=True)
class VerdictEvent:
    """A stage's decision about an anomaly (its ``event_id``), for the verdict trail."""

    event_id: str
    metric: str
    timestamp: int
    stage: str  # analyzer, mirage, ionosphere, alerters, ...
    verdict: str  # e.g. sent_to_alerters, no_alert_rule, alerted, suppressed, muted, failed
    reason: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    at: float = 0.0

    def to_fields(self) -> dict[FieldT, EncodableT]:
        return {"id": self.event_id, "verdict": json.dumps(asdict(self), separators=(",", ":"))}

    @classmethod
    def from_fields(cls, fields: dict[bytes, bytes]) -> VerdictEvent:
        try:
            body = _json_object(fields[b"verdict"])
            verdict = cls(**body)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a verdict event: {exc}") from None
        if not all(isinstance(x, str) for x in (verdict.event_id, verdict.stage, verdict.verdict)):
            raise ValueError("not a verdict event: event_id, stage and verdict must be strings")
        return verdict


def publish(client: redis.Redis | redis.client.Pipeline, keys: RedisKeys, event: AnomalyEvent,
            maxlen: int, stream: str | None = None) -> None:  # fmt: skip
    """XADD the event to the anomalies stream (or ``stream``), capped at about ``maxlen``."""
    client.xadd(
        stream or keys.anomalies_stream(), event.to_fields(), maxlen=maxlen, approximate=True
    )


def failed_channels(detail: dict[str, Any] | None) -> list[str]:
    """The channels an alerters verdict's detail records as failed."""
    channels = (detail or {}).get("channels") or {}
    if not isinstance(channels, dict):
        return []
    return sorted(str(c) for c, outcome in channels.items() if outcome == "failed")


def verdict_text(verdict: str, failed: list[str]) -> str:
    """What the UI and CLI show: ``alerted (slack failed)`` when only some channels
    delivered, ``failed (slack, webhook-ops)`` when none did, else the verdict."""
    if not failed:
        return verdict
    if verdict == "failed":
        return f"failed ({', '.join(failed)})"
    return f"{verdict} ({', '.join(failed)} failed)"


def publish_verdict(client: redis.Redis | redis.client.Pipeline, keys: RedisKeys,
                    verdict: VerdictEvent, maxlen: int) -> None:  # fmt: skip
    client.xadd(keys.verdicts_stream(), verdict.to_fields(), maxlen=maxlen, approximate=True)


def read_all(client: redis.Redis, keys: RedisKeys) -> list[AnomalyEvent]:
    """Every event on the anomalies stream, oldest first (for tests and tools)."""
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], client.xrange(keys.anomalies_stream()))
    return [AnomalyEvent.from_fields(f) for _, f in entries]  # binary client
