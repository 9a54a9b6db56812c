"""Hand-offs between daemons: Redis Streams read through consumer groups.

A consumer reads entries, does their effect, and acknowledges each entry only once
that effect is durable (a row committed, an alert delivered and logged).  Entries a
consumer has read but not acknowledged stay pending:

- after a failure (Redis or SQL went away) the same consumer first re-reads its own
  pending entries (``XREADGROUP ... 0``) before taking new ones;
- entries left pending by a consumer that died are claimed by another after
  ``claim_idle`` seconds (``XAUTOCLAIM``).

Every stage is idempotent by the event's id, so an entry processed twice (claimed
after a slow consumer did finish) has no second effect.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Container, Sequence
from typing import cast

import redis

Entry = tuple[bytes, dict[bytes, bytes]]


def consumer_name(daemon: str) -> str:
    return f"{daemon}-{socket.gethostname()}-{os.getpid()}"


class StreamConsumer:
    """One consumer in one group reading one or more streams."""

    def __init__(
        self,
        client: redis.Redis,
        streams: Sequence[str],
        group: str,
        consumer: str,
        *,
        claim_idle_ms: int = 60_000,
        count: int = 100,
    ) -> None:
        self.redis = client
        self.streams = list(streams)
        self.group = group
        self.consumer = consumer
        self.claim_idle_ms = claim_idle_ms
        self.count = count
        self._own_pending = True  # re-read what this consumer left unacknowledged first
        self._ready = False

    def ensure_groups(self) -> None:
        for stream in self.streams:
            try:
                self.redis.xgroup_create(stream, self.group, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        self._ready = True

    def read(
        self, block_ms: int, held: Container[tuple[str, bytes]] = ()
    ) -> list[tuple[str, bytes, dict[bytes, bytes]]]:
        """Entries to process as (stream, entry id, fields): own pending first, then
        entries claimed from dead consumers, then new ones (blocking up to block_ms).

        ``held``: (stream, entry id) of own pending entries the caller is still working
        on (the alerters' retrying deliveries); they are not returned again, so they
        never hide the entries behind them.

        A stream or group deleted underneath the consumer (Redis flushed or restarted
        without persistence) is created again."""
        if not self._ready:
            self.ensure_groups()
        try:
            return self._read(block_ms, held)
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self.ensure_groups()
            return self._read(block_ms, held)

    def _read(
        self, block_ms: int, held: Container[tuple[str, bytes]]
    ) -> list[tuple[str, bytes, dict[bytes, bytes]]]:
        if self._own_pending:
            pending = [e for e in self._xread("0", block_ms=None) if (e[0], e[1]) not in held]
            if pending:
                return pending
            self._own_pending = False
        claimed = self._claim()
        if claimed:
            return claimed
        return self._xread(">", block_ms=block_ms)

    def _xread(
        self, start: str, block_ms: int | None
    ) -> list[tuple[str, bytes, dict[bytes, bytes]]]:
        reply = cast(
            list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]] | None,  # binary client
            self.redis.xreadgroup(
                self.group,
                self.consumer,
                {s: start for s in self.streams},
                count=self.count,
                block=block_ms,
            ),
        )
        out: list[tuple[str, bytes, dict[bytes, bytes]]] = []
        for stream, entries in reply or []:
            name = stream.decode() if isinstance(stream, bytes) else stream
            out += [(name, entry_id, fields) for entry_id, fields in entries if fields]
            # a pending entry trimmed from the stream (MAXLEN) comes back without fields:
            # there is nothing left to do with it, so it leaves the pending list
            gone = [entry_id for entry_id, fields in entries if not fields and entry_id]
            if gone:
                self.ack(name, *gone)
        return out

    def _claim(self) -> list[tuple[str, bytes, dict[bytes, bytes]]]:
        out = []
        for stream in self.streams:
            reply = self.redis.xautoclaim(stream, self.group, self.consumer, self.claim_idle_ms,
                                          start_id="0-0", count=self.count)  # fmt: skip
            out += [(stream, entry_id, fields) for entry_id, fields in reply[1] if fields]
        return out

    def ack(self, stream: str, *entry_ids: bytes) -> None:
        if entry_ids:
            self.redis.xack(stream, self.group, *entry_ids)

    def deliveries(self, stream: str, entry_id: bytes) -> int:
        """How many times the group delivered the entry, this time included (XPENDING:
        counted by Redis, so across restarts); 1 for an entry no longer pending."""
        rows = self.redis.xpending_range(stream, self.group, min=entry_id, max=entry_id, count=1)
        return int(rows[0]["times_delivered"]) if rows else 1

    def recover(self) -> None:
        """Call after a failed pass: the next read starts with this consumer's pending."""
        self._own_pending = True

    def pending_count(self) -> int:
        total = 0
        for stream in self.streams:
            try:
                total += self.redis.xpending(stream, self.group)["pending"]
            except redis.ResponseError:  # no group yet
                continue
        return total
