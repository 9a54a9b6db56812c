"""``skyline.store.raw``: pre-encoded commands on a real Redis, their replies in order,
error replies in their place, and a broken or slow connection raised and discarded."""

from __future__ import annotations

import numpy as np
import pytest
import redis

from skyline.store import raw


def test_replies_come_back_in_order_with_errors_and_nils_in_place(redis_client):
    redis_client.set("k1", b"one")
    redis_client.rpush("alist", "x")
    payload = b"".join([raw.get(b"k1"), raw.get(b"alist"), raw.get(b"missing"),
                        raw.getrange(b"k1", 1, -1), raw.append(b"k1", b"!")])  # fmt: skip
    replies = raw.execute(redis_client, payload, 5)
    assert replies[0] == b"one"
    assert isinstance(replies[1], redis.ResponseError) and "WRONGTYPE" in str(replies[1])
    assert replies[2:] == [None, b"ne", 4]
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        raw.execute_checked(redis_client, payload, 5)
    assert redis_client.get("k1") == b"one!!"  # the commands after the error still ran


def test_the_fast_reader_reads_what_redis_pys_own_parser_reads(redis_url, redis_client):
    """``read_replies`` takes replies straight from the hiredis reader; its slow twin
    is redis-py's pure-Python parser, on the same payload: big values (many socket
    reads), errors, nils, integers, status replies and arrays."""
    from redis._parsers import _RESP2Parser

    rng = np.random.default_rng(1)
    for i in range(40):
        redis_client.set(f"big{i}", rng.bytes(int(rng.integers(0, 200_000))))
    redis_client.rpush("alist", "x", "y")
    commands = [raw.get(f"big{i}".encode()) for i in range(40)]
    commands += [raw.get(b"alist"), raw.get(b"none"), raw.append(b"big0", b"!"),
                 raw.command(b"LRANGE", b"alist", b"0", b"-1"), raw.command(b"PING"),
                 raw.getrange(b"big1", 5, 9)] * 3  # fmt: skip
    payload = b"".join(commands)
    slow = redis.Redis.from_url(redis_url, parser_class=_RESP2Parser)
    try:
        redis_client.set("big0", b"")
        fast_replies = raw.execute(redis_client, payload, len(commands))
        redis_client.set("big0", b"")
        slow_replies = raw.execute(slow, payload, len(commands))
    finally:
        slow.close()

    def same(x):
        return (type(x), str(x)) if isinstance(x, Exception) else x

    assert [same(x) for x in fast_replies] == [same(x) for x in slow_replies]
    assert isinstance(fast_replies[40], redis.ResponseError) and fast_replies[41] is None
    assert fast_replies[42] == 1 and fast_replies[43] == [b"x", b"y"]
    assert fast_replies[44] in (b"PONG", True) and len(fast_replies[45]) == 5


def test_replies_sent_now_are_read_later_and_a_cancel_releases_the_connection(redis_client):
    redis_client.set("k", b"v")
    pending = raw.send(redis_client, raw.get(b"k") + raw.append(b"k", b"w"), 2)
    assert redis_client.get("k") in (b"v", b"vw")  # other work meanwhile, on another connection
    assert pending.read() == [b"v", 2]
    with pytest.raises(RuntimeError):
        pending.read()
    cancelled = raw.send(redis_client, raw.get(b"k"), 1)
    assert redis_client.connection_pool._in_use_connections
    cancelled.cancel()
    assert not redis_client.connection_pool._in_use_connections
    assert raw.execute(redis_client, raw.get(b"k"), 1) == [b"vw"]


def test_a_connection_closed_mid_reply_raises_and_is_not_reused(redis_client):
    redis_client.set("k", b"v")
    payload = raw.get(b"k") + raw.command(b"QUIT") + raw.get(b"k")
    with pytest.raises(redis.ConnectionError):
        raw.execute(redis_client, payload, 3)
    # the pool hands out a working connection next, not the closed one
    assert raw.execute(redis_client, raw.get(b"k"), 1) == [b"v"]


def test_a_reply_slower_than_the_socket_timeout_raises_timeout(redis_url):
    client = redis.Redis.from_url(redis_url, socket_timeout=0.2)
    try:
        payload = raw.command(b"BLPOP", b"nothing-here", b"2")
        with pytest.raises(redis.TimeoutError):
            raw.execute(client, payload, 1)
        assert raw.execute(client, raw.command(b"PING"), 1) == [b"PONG"]
    finally:
        client.close()


def test_set_ex_records_writes_each_value_once_grouped_by_key_length(redis_client):
    """The record-built SETs are byte for byte the plain ``set_ex`` commands (the
    slow twin), grouped by key length in key order, and store what they say."""
    fields = [("n", "<u4"), ("x", "<f8", (3,))]
    keys = [b"k", "m\u00e9trique.\u03b1".encode(), b"kk", b"a" * 300, b"k2", b"\r\n$3 odd", b"z"]
    values = np.zeros(len(keys), dtype=fields)
    values["n"] = np.arange(len(keys))
    values["x"] = np.random.default_rng(3).normal(size=(len(keys), 3))
    filled = []

    def fill(rec: np.ndarray, at: np.ndarray) -> None:
        filled.append(at.tolist())
        rec["n"], rec["x"] = values["n"][at], values["x"][at]

    payload = raw.set_ex_records(keys, fields, fill, 600)
    order = sorted(range(len(keys)), key=lambda i: (len(keys[i]), i))
    assert sum(filled, []) == order
    slow = b"".join(raw.set_ex(keys[i], values[i].tobytes(), 600) for i in order)
    assert b"".join(bytes(b) for b in payload) == slow
    assert raw.execute_checked(redis_client, payload, len(keys)) == [b"OK"] * len(keys)
    for key, value in zip(keys, values, strict=True):
        assert redis_client.get(key) == value.tobytes()
        assert 590 < redis_client.ttl(key) <= 600
    assert raw.set_ex_records([], fields, fill, 600) == []
