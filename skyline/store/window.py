"""Fixed-window counters in Redis, the one way Skyline rate-limits across processes
(flux API keys, boundary alert channels, webapp logins).

A count lives in a key that names its window's start, with a TTL of two windows:
one INCRBY and one EXPIRE on a single key, so it works on every Redis Skyline runs
on (the embedded one is 6.2, which has no ``EXPIRE ... NX``) and on Redis Cluster.
"""

from __future__ import annotations

import redis


def window_start(now: float, period: int) -> int:
    """Start of the fixed window of ``period`` seconds that holds ``now``."""
    return int(now) // period * period


def incr_window(client: redis.Redis, key: str, period: int, amount: int = 1) -> int:
    """Add ``amount`` to the window counter ``key`` (whose name holds its window's
    start); returns the new count."""
    pipe = client.pipeline(transaction=False)
    pipe.incrby(key, amount)
    pipe.expire(key, 2 * period)
    return int(pipe.execute()[0])
