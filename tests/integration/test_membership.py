"""Members with leases in a real Redis (skyline/runtime/membership.py), on an
injected clock: join, renew, expire, leave, hostile records."""

from __future__ import annotations

import json

import pytest

from skyline.runtime.membership import Membership, member_id, parse, read_members
from skyline.store.keys import RedisKeys


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def keys() -> RedisKeys:
    return RedisKeys("t:")


def member(redis_client, keys, clock, name: str, lease: float = 10.0) -> Membership:
    return Membership(redis_client, keys, "analyzer", name, lease, clock, pid=4242)


def test_members_join_renew_and_leave(redis_client, keys) -> None:
    clock = Clock()
    a, b = member(redis_client, keys, clock, "host-a"), member(redis_client, keys, clock, "host-b")
    a.renew({"metrics": 5})
    b.renew()
    live, expired = a.look()
    assert [m.id for m in live] == sorted([a.id, b.id]) and expired == []
    got = {m.id: m for m in live}[a.id]
    assert (got.kind, got.host, got.pid, got.info) == ("analyzer", "host-a", 4242, {"metrics": 5})
    assert got.until == clock.t + 10.0
    assert 0 < redis_client.ttl(keys.members("analyzer")) <= 60  # every key has a TTL
    b.leave()
    assert [m.id for m in a.look()[0]] == [a.id]


def test_a_member_that_stops_renewing_expires_then_is_removed(redis_client, keys) -> None:
    clock = Clock()
    a, b = member(redis_client, keys, clock, "a"), member(redis_client, keys, clock, "b")
    a.renew()
    b.renew()
    clock.t += 6
    a.renew()  # b does not: it was killed
    clock.t += 5  # b's lease (10 s) ran out 1 s ago
    live, expired = a.look()
    assert [m.id for m in live] == [a.id] and [m.id for m in expired] == [b.id]
    assert redis_client.hexists(keys.members("analyzer"), b.id)  # kept one more lease
    clock.t += 10
    a.renew()
    live, expired = a.look()  # reported a last time (its set is recovered) and removed
    assert [m.id for m in live] == [a.id] and [m.id for m in expired] == [b.id]
    assert not redis_client.hexists(keys.members("analyzer"), b.id)
    assert a.look() == (live, [])


def test_a_slow_member_comes_back_by_renewing(redis_client, keys) -> None:
    clock = Clock()
    a, b = member(redis_client, keys, clock, "a"), member(redis_client, keys, clock, "b")
    a.renew()
    b.renew()
    clock.t += 11
    a.renew()
    assert [m.id for m in a.look()[1]] == [b.id]
    b.renew()  # it was only slow
    assert [m.id for m in a.look()[0]] == sorted([a.id, b.id])


def test_kinds_are_separate(redis_client, keys) -> None:
    clock = Clock()
    an = Membership(redis_client, keys, "analyzer", "h", 10, clock)
    hz = Membership(redis_client, keys, "horizon", "h", 10, clock)
    an.renew()
    hz.renew()
    assert [m.id for m in an.look()[0]] == [an.id]
    assert [m.kind for m in read_members(redis_client, keys, "horizon")[0]] == ["horizon"]


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[]",
        b'{"host": "h"}',
        b'{"host":"h","pid":"x","started":0,"ts":0,"until":0}',
        json.dumps(
            {"host": "h", "pid": 1, "started": 0, "ts": 0, "until": 0, "info": [1]}
        ).encode(),
        b"\xff\xfe",
    ],  # fmt: skip
)
def test_hostile_records_are_counted_skipped_and_removed(redis_client, keys, raw) -> None:
    clock = Clock()
    a = member(redis_client, keys, clock, "a")
    a.renew()
    redis_client.hset(keys.members("analyzer"), "evil\n\x00id", raw)
    live, expired = a.look()
    assert [m.id for m in live] == [a.id] and expired == []
    assert a.malformed == 1
    assert not redis_client.hexists(keys.members("analyzer"), "evil\n\x00id")
    with pytest.raises(ValueError, match="not a member record"):
        parse("analyzer", "evil", raw)


def test_member_ids_are_unique_per_start() -> None:
    ids = {member_id("h", 7) for _ in range(50)}
    assert len(ids) == 50 and all(i.startswith("h-7-") for i in ids)
