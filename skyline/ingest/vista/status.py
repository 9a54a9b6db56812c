"""The state of each pull source, as vista tracks it and the Status page shows it."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import redis

from skyline.store.keys import RedisKeys


@dataclass
class SourceState:
    """One source's health: consecutive failures drive the backoff and the thunder event."""

    name: str
    kind: str
    failures: int = 0  # consecutive
    errors: dict[str, int] = field(default_factory=dict)  # by reason, since start
    last_error: str = ""
    last_error_at: float | None = None
    last_ok: float | None = None
    points: int = 0  # stored since start
    metrics: int = 0  # in the last successful pull
    pulls: int = 0
    raised: bool = False  # the failing event was raised for this failure streak
    next_due: float = 0.0  # monotonic

    def failed(self, reason: str, message: str, now: float) -> None:
        self.failures += 1
        self.errors[reason] = self.errors.get(reason, 0) + 1
        self.last_error = f"{reason}: {message}"
        self.last_error_at = now

    def succeeded(self, points: int, metrics: int, now: float) -> None:
        self.failures = 0
        self.raised = False
        self.last_ok = now
        self.points += points
        self.metrics = metrics
        self.pulls += 1

    def public(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("next_due")
        out["ok"] = self.failures == 0
        return out


def backoff(interval: float, failures: int) -> float:
    """Seconds before the next try after ``failures`` consecutive failures."""
    first = min(interval, 5.0)
    cap = max(interval, 300.0)
    return min(cap, first * 2 ** max(0, failures - 1))


def publish(client: redis.Redis, keys: RedisKeys, states: list[SourceState]) -> None:
    if not states:
        return
    client.hset(keys.vista_status(), mapping={s.name: json.dumps(s.public()) for s in states})


def read(client: redis.Redis, keys: RedisKeys) -> list[dict[str, Any]]:
    """Every source's last published state, by name (for the webapp and the CLI)."""
    out = []
    for name, raw in sorted(client.hgetall(keys.vista_status()).items()):
        try:
            doc = json.loads(raw)
        except ValueError:
            continue
        if isinstance(doc, dict):
            doc["name"] = name.decode() if isinstance(name, bytes) else name
            doc["age"] = round(time.time() - doc["last_ok"], 1) if doc.get("last_ok") else None
            out.append(doc)
    return out
