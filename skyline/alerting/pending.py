"""Durable state of one alert on one channel (``alert:delivery:<channel>:<event id>``).

A Redis hash holds the delivery's status (pending, sent, failed), its attempt count,
when the next attempt is due, its give-up deadline, the last error, and the steps that
already succeeded (``step.<name>``: Slack's message ts, PagerDuty's dedup_key, the
email's Message-ID).  A daemon restarted in the middle of a retry finds it again when
it takes the alert's stream entry over, and goes on from the same attempt, deadline
and steps: nothing done is redone, nothing pending is lost.

An attempt holds a short lease (``alert:lease:<channel>:<event id>``, SET NX with a
TTL), so two alerters never work on the same delivery at the same time.
"""

from __future__ import annotations

import uuid
from typing import cast

import redis

from skyline.store.keys import RedisKeys

KEEP_FINISHED = 86400  # a finished delivery is remembered this long (re-deliveries)
STEP = "step."


class Delivery:
    def __init__(self, client: redis.Redis, keys: RedisKeys, channel: str, event_id: str,
                 lease_seconds: float) -> None:  # fmt: skip
        self.redis = client
        self.key = keys.alert_delivery(channel, event_id)
        self.lease_key = keys.alert_lease(channel, event_id)
        self.lease_ms = max(100, int(lease_seconds * 1000))
        self._token = uuid.uuid4().hex
        self.fields: dict[str, str] = {}

    def open(self, now: float, give_up_after: float) -> Delivery:
        """Create the record, or load the one a previous life of the daemon left."""
        pipe = self.redis.pipeline(transaction=True)
        for name, value in (("status", "pending"), ("attempt", 0), ("created", now),
                            ("next_at", now), ("deadline", now + give_up_after)):  # fmt: skip
            pipe.hsetnx(self.key, name, value)
        pipe.hgetall(self.key)
        *created, fields = pipe.execute()
        if created[0]:  # new: it lives until its deadline, and a day more
            self.redis.expire(self.key, int(give_up_after) + KEEP_FINISHED)
        self._load(fields)
        return self

    def reload(self) -> None:
        self._load(cast(dict[bytes, bytes], self.redis.hgetall(self.key)))  # binary client

    def _load(self, raw: dict[bytes, bytes]) -> None:
        self.fields = {k.decode(): v.decode() for k, v in raw.items()}

    @property
    def status(self) -> str:
        return self.fields.get("status", "pending")

    @property
    def attempt(self) -> int:
        return int(self.fields.get("attempt", 0))

    @property
    def next_at(self) -> float:
        return float(self.fields.get("next_at", 0))

    @property
    def deadline(self) -> float:
        return float(self.fields.get("deadline", 0))

    @property
    def error(self) -> str:
        return self.fields.get("error", "")

    # Progress: the steps that already succeeded
    def get(self, step: str) -> str | None:
        return self.fields.get(STEP + step)

    def save(self, step: str, value: str) -> None:
        self.redis.hset(self.key, STEP + step, value)
        self.fields[STEP + step] = value

    def begin_attempt(self) -> int:
        n = int(self.redis.hincrby(self.key, "attempt", 1))
        self.fields["attempt"] = str(n)
        return n

    def retry_at(self, when: float, error: str) -> None:
        self._set({"next_at": when, "error": error})

    def finish(self, status: str, error: str = "") -> None:
        self._set({"status": status, "error": error})
        self.redis.expire(self.key, KEEP_FINISHED)

    def _set(self, values: dict[str, object]) -> None:
        self.redis.hset(self.key, mapping={k: str(v) for k, v in values.items()})
        self.fields.update({k: str(v) for k, v in values.items()})

    def lease(self) -> bool:
        return bool(self.redis.set(self.lease_key, self._token, nx=True, px=self.lease_ms))

    def release(self) -> None:
        if self.redis.get(self.lease_key) == self._token.encode():
            self.redis.delete(self.lease_key)
