"""The suite's Redis is its own: a test run never writes to or flushes a Redis it did
not start (issue 15, item 10), and a missing peer fails under CI (item 11)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import REDIS_ENV, _reachable
from tests.peers import require

SHARED = "redis://127.0.0.1:6379"


@pytest.fixture
def own_server() -> None:
    if os.environ.get(REDIS_ENV):
        pytest.skip(f"{REDIS_ENV} names the server explicitly")


def test_session_redis_is_a_server_this_run_started(
    own_server: None, redis_base_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    client = redis.Redis.from_url(redis_base_url)
    assert client.connection_pool.connection_kwargs["port"] != 6379
    # its working directory is under this run's temp dir: no other process's server
    server_dir = Path(client.config_get("dir")["dir"]).resolve()
    assert server_dir.is_relative_to(tmp_path_factory.getbasetemp().resolve())
    client.close()


@pytest.fixture
def sentinels() -> Iterator[tuple[str, list[redis.Redis]]]:
    """A uniquely named key (60 s TTL) in DBs 1-13 of a Redis on 6379, if one answers;
    deleted afterwards.  Nothing else of that server is read or written."""
    if not _reachable(SHARED):
        pytest.skip("no Redis on 127.0.0.1:6379 to prove it is left alone")
    name = f"skyline-test-isolation-sentinel-{secrets.token_hex(8)}"
    clients = [redis.Redis.from_url(f"{SHARED}/{db}") for db in range(1, 14)]
    try:
        for client in clients:
            client.set(name, b"1", ex=60, nx=True)
        yield name, clients
    finally:
        for client in clients:
            client.delete(name)
            client.close()


def test_a_redis_on_6379_survives_the_per_test_flush(
    own_server: None, sentinels: tuple[str, list[redis.Redis]], request: pytest.FixtureRequest
) -> None:
    name, clients = sentinels
    request.getfixturevalue("redis_url")  # the fixture's own flush of one DB index
    base = request.getfixturevalue("redis_base_url")
    for db in range(1, 14):  # and what it does over a run: every index it cycles through
        redis.Redis.from_url(f"{base}/{db}").flushdb()
    assert all(client.exists(name) for client in clients)


def test_a_missing_peer_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="memcached is missing"):
        require("memcached", "not installed")


def test_a_missing_peer_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="memcached is missing"):
        require("memcached", "not installed")
