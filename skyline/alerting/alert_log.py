"""The alert log (SQL ``alert_log``): one row per delivery attempt and per decision.

A row that cannot be written (SQL down, a lock timeout) is not dropped: it goes to
a Redis list (``alert:log_outbox``, like the deliveries themselves durable in Redis,
see skyline.alerting.pending) and ``drain`` writes it later, oldest first, keeping
the time of the attempt.  A row is removed from the list only after its commit, so a
crash in between writes it again rather than losing it (at least once).  A row the
database refuses for its data (``DataError``) is dead-lettered: counted
(``alert_log.dead_letters``), logged, removed.  The list is bounded: beyond
``OUTBOX_LIMIT`` rows the oldest are shed and counted (``alert_log.shed``).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import redis
from sqlalchemy import Engine, select
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session

from skyline.db.models import AlertLog, Anomaly
from skyline.db.repo import get_or_create_metric
from skyline.runtime.daemon import OUTAGES, Counters
from skyline.store.datapoint import printable
from skyline.store.keys import RedisKeys

OUTBOX_LIMIT = 100_000
OUTBOX_TTL = 7 * 86400  # refreshed by every row queued
DRAIN_BATCH = 200


class AlertLogWriter:
    def __init__(self, engine: Engine, client: redis.Redis, keys: RedisKeys,
                 counters: Counters, log: logging.Logger) -> None:  # fmt: skip
        self.engine, self.redis, self.counters, self.log = engine, client, counters, log
        self.outbox = keys.alert_log_outbox()

    def write(self, event_id: str, metric: str, channel: str, pattern: str, attempt: int,
              status: str, error: str | None) -> None:  # fmt: skip
        """Record one row now, or queue it for ``drain``; raises only if Redis is down
        too (the caller's outage handling then applies)."""
        now = int(time.time())
        row = {"event_id": event_id, "metric": metric, "channel": channel, "pattern": pattern,
               "attempt": attempt, "status": status, "error": error, "created_at": now,
               "delivered_at": now if status == "sent" else None}  # fmt: skip
        if self.redis.llen(self.outbox) == 0:  # keep rows in order behind queued ones
            try:
                self._insert(row)
                return
            except DataError as exc:
                self._dead_letter(row, exc)
                return
            except OUTAGES as exc:
                self.log.warning("alert log unavailable (%s); row queued", printable(exc, 200))
            except Exception:  # not an outage, but the row is kept and retried, not lost
                self.log.exception("could not write an alert_log row; queued")
        self._queue(row)

    def _queue(self, row: dict[str, Any]) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.rpush(self.outbox, json.dumps(row))
        pipe.ltrim(self.outbox, -OUTBOX_LIMIT, -1)
        pipe.expire(self.outbox, OUTBOX_TTL)
        pipe.llen(self.outbox)
        length = pipe.execute()[0]
        self.counters.inc("alert_log.queued")
        if length > OUTBOX_LIMIT:
            self.counters.inc("alert_log.shed", length - OUTBOX_LIMIT)

    def drain(self) -> int:
        """Write queued rows, oldest first; stops at the first outage (they stay
        queued).  Returns how many were written."""
        written = 0
        for raw in self.redis.lrange(self.outbox, 0, DRAIN_BATCH - 1):
            try:
                row = json.loads(raw)
                self._insert(row)
                written += 1
            except DataError as exc:
                self._dead_letter(raw, exc)
            except OUTAGES:
                break
            except (ValueError, KeyError, TypeError) as exc:  # not a row: nothing to retry
                self._dead_letter(raw, exc)
            self.redis.lrem(self.outbox, 1, raw)  # type: ignore[arg-type]  # redis-py says str; bytes go as is
        if written:
            self.counters.inc("alert_log.replayed", written)
        return written

    def _dead_letter(self, row: object, exc: Exception) -> None:
        self.counters.inc("alert_log.dead_letters")
        self.log.warning("alert_log row dropped, the database refused it (%s): %s",
                         printable(getattr(exc, "orig", exc), 200), printable(row, 400))  # fmt: skip

    def _insert(self, row: dict[str, Any]) -> None:
        with Session(self.engine) as db:
            metric = get_or_create_metric(db, row["metric"])
            anomaly_id = db.scalar(select(Anomaly.id).where(Anomaly.event_id == row["event_id"]))
            db.add(AlertLog(event_id=row["event_id"], anomaly_id=anomaly_id, metric_id=metric.id,
                            channel=row["channel"], rule_pattern=row["pattern"],
                            attempt=row["attempt"], status=row["status"], error=row["error"],
                            created_at=row["created_at"], delivered_at=row["delivered_at"]))  # fmt: skip
            db.commit()
