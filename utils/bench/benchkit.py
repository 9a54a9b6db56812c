"""What several benchmarks share: the best of N timings, and a Redis to run on (a
given URL's DB 12, flushed by the benchmark, or an embedded one in a temp dir).

Imported by the scripts in this folder (``from benchkit import best, with_redis``;
running ``python utils/bench/<name>.py`` puts this folder on ``sys.path``).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable

import redis

from skyline.store.connection import EmbeddedRedis


def best(fn: Callable[[], object], reps: int) -> float:
    """The shortest of ``reps`` timings of ``fn()``, in seconds."""
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def with_redis(url: str | None, fn: Callable[[redis.Redis], dict]) -> dict:
    """``fn(client)`` on the Redis at ``url`` (it must select DB 12, which the caller
    flushes), or on an embedded Redis started for the run."""
    if url:
        client = redis.Redis.from_url(url, socket_timeout=60)
        db = int(client.connection_pool.connection_kwargs.get("db", 0))
        if db != 12:
            raise SystemExit(f"--redis-url must select DB 12 (it is flushed), not DB {db}")
        return fn(client)
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(tmp, persist=False)
        server.start()
        try:
            client = redis.Redis(unix_socket_path=str(server.socket), socket_timeout=60, db=12)
            return fn(client)
        finally:
            server.stop()
