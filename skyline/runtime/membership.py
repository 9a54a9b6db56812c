"""Which processes of a daemon kind are alive: members with leases in Redis.

Every daemon process is a member of its kind (``analyzer``, ``horizon`` ...): one
field of the hash ``members:<kind>`` (``RedisKeys.members``), its id
``<host>-<pid>-<token>`` mapped to JSON ``{kind, host, pid, started, ts, until,
info}``.  The daemon renews it every pass (``until`` = now + lease) and deletes
it when it stops.  A member whose ``until`` has passed is not live: it stopped
renewing (killed, hung, cut off from Redis); the others see it gone at their next
look, and remove its field once it has been expired for one more lease (so a
member that was only slow is never removed while it could still renew).

Single-key commands only (HSET, HGETALL, HDEL, EXPIRE on one hash), so this works
on Redis Cluster.  Leases compare the members' clocks: hosts must agree well
within a lease (NTP).  ``info`` carries what a member wants shown beside it (an
analyzer's share of the metrics); ``skyline status`` and the Status page list it.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import redis

from skyline.runtime.shares import Shares
from skyline.store.keys import RedisKeys

log = logging.getLogger(__name__)

MIN_KEY_TTL = 60  # the hash outlives its members' leases by at least this


@dataclass(frozen=True)
class Member:
    id: str
    kind: str
    host: str
    pid: int
    started: float
    ts: float  # last renewal
    until: float  # lease end
    info: Mapping[str, Any] = field(default_factory=dict)

    def live(self, now: float) -> bool:
        return self.until >= now


def member_id(host: str, pid: int) -> str:
    """``<host>-<pid>-<token>``: unique even when a pid is reused after a restart."""
    return f"{host}-{pid}-{secrets.token_hex(3)}"


def parse(kind: str, mid: str, raw: bytes | str) -> Member:
    """One field of ``members:<kind>``; ValueError when it is not a member record."""
    try:
        d = json.loads(raw)
        info = d.get("info") or {}
        if not isinstance(info, dict):
            raise TypeError("info is not an object")
        return Member(mid, kind, str(d["host"]), int(d["pid"]), float(d["started"]),
                      float(d["ts"]), float(d["until"]), info)  # fmt: skip
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ValueError(f"member {mid[:80]!r} of {kind}: not a member record ({exc})") from None


def read_members(
    client: redis.Redis, keys: RedisKeys, kind: str
) -> tuple[list[Member], list[bytes | str]]:
    """Every member of ``kind`` (live or not, sorted by id) and the fields that were
    not member records (logged, skipped)."""
    raw: dict[bytes | str, bytes | str] = client.hgetall(keys.members(kind))
    out: list[Member] = []
    bad: list[bytes | str] = []
    for mid, value in raw.items():
        name = mid.decode(errors="replace") if isinstance(mid, bytes) else mid
        try:
            out.append(parse(kind, name, value))
        except ValueError as exc:
            bad.append(mid)
            log.warning("%s", exc)
    return sorted(out, key=lambda m: m.id), bad


def look(
    client: redis.Redis, keys: RedisKeys, kind: str, now: float, lease: float
) -> tuple[list[Member], list[Member], int]:
    """(live, expired) members of ``kind`` at ``now``, and how many fields were not
    member records.  Members expired for more than one more ``lease`` are removed
    from the hash (reported here a last time), and so is every malformed field."""
    everyone, bad = read_members(client, keys, kind)
    live = [m for m in everyone if m.live(now)]
    expired = [m for m in everyone if not m.live(now)]
    gone: list[bytes | str] = [m.id for m in expired if m.until + lease < now]
    gone += bad
    if gone:
        client.hdel(keys.members(kind), *gone)
    return live, expired, len(bad)


class Membership:
    """This process as a member of ``kind``."""

    def __init__(self, client: redis.Redis, keys: RedisKeys, kind: str, host: str,
                 lease: float, clock: Callable[[], float], pid: int | None = None,
                 mid: str | None = None) -> None:  # fmt: skip
        self.redis, self.keys, self.kind, self.host = client, keys, kind, host
        self.lease = float(lease)
        self.clock = clock
        self.pid = os.getpid() if pid is None else pid
        self.id = mid or member_id(host, self.pid)
        self.started = clock()
        self.malformed = 0  # fields seen that were not member records

    @property
    def key(self) -> str:
        return self.keys.members(self.kind)

    def renew(self, info: Mapping[str, Any] | None = None) -> None:
        now = self.clock()
        record = {"host": self.host, "pid": self.pid, "started": self.started, "ts": now,
                  "until": now + self.lease, "info": dict(info or {})}  # fmt: skip
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(self.key, self.id, json.dumps(record))
        pipe.expire(self.key, max(MIN_KEY_TTL, int(3 * self.lease) + 1))
        pipe.execute()

    def leave(self) -> None:
        self.redis.hdel(self.key, self.id)

    def look(self) -> tuple[list[Member], list[Member]]:
        """(live, expired) members now (``look``)."""
        live, expired, bad = look(self.redis, self.keys, self.kind, self.clock(), self.lease)
        self.malformed += bad
        return live, expired

    def live_shares(self) -> Shares:
        """The assignment over the live members of this kind, this one always among
        them (it is running)."""
        live, _ = self.look()
        return Shares(sorted({m.id for m in live} | {self.id}))


def member_rows(
    client: redis.Redis, keys: RedisKeys, kind: str, now: float
) -> list[dict[str, Any]]:
    """The live members of ``kind`` for ``skyline status`` and the Status page: id,
    host, pid, runs, seconds of lease left, and the share an analyzer reports (the
    fraction of all metrics it owns, and how many)."""
    rows = []
    for m in read_members(client, keys, kind)[0]:
        if not m.live(now):
            continue
        rows.append({"id": m.id, "host": m.host, "pid": m.pid, "runs": m.info.get("runs"),
                     "lease_left": round(m.until - now, 1), "share": m.info.get("share"),
                     "metrics": m.info.get("metrics")})  # fmt: skip
    return rows
