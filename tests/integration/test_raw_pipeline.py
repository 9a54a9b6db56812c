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
