"""Where each pulled source stopped, kept in Redis so a restart resumes exactly.

One hash per source (``vista:cursor:<source>``): field ``""`` is the end of the last
window the source answered, every other field a metric and the timestamp of its
newest point stored.  A pass takes, per metric, only points newer than that (so no
point is stored twice), plus -- within ``lookback`` -- older points the store does not
hold yet (late rows).  Field ``"writing"`` is set while a pass writes: if a pass dies
between writing points and moving the cursors, the next pass sees it and checks
every candidate point against the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import redis

from skyline.store.keys import RedisKeys

WINDOW = ""
WRITING = "writing"


@dataclass
class Cursors:
    window_end: float | None
    metrics: dict[str, float] = field(default_factory=dict)
    interrupted: bool = False


def read(client: redis.Redis, keys: RedisKeys, source: str) -> Cursors:
    raw = client.hgetall(keys.vista_cursor(source))
    out = Cursors(None)
    for k, v in raw.items():
        name = k.decode() if isinstance(k, bytes) else k
        if name == WINDOW:
            out.window_end = float(v)
        elif name == WRITING:
            out.interrupted = True
        else:
            out.metrics[name] = float(v)
    return out


def begin(client: redis.Redis, keys: RedisKeys, source: str) -> None:
    client.hset(keys.vista_cursor(source), WRITING, "1")


def commit(
    client: redis.Redis, keys: RedisKeys, source: str, window_end: float, newest: dict[str, float]
) -> None:
    """Move the cursors after the points are written (one transaction)."""
    key = keys.vista_cursor(source)
    pipe = client.pipeline(transaction=True)
    mapping: dict[Any, Any] = {WINDOW: repr(float(window_end))}
    mapping.update({m: repr(float(t)) for m, t in newest.items()})
    pipe.hset(key, mapping=mapping)
    pipe.hdel(key, WRITING)
    pipe.execute()


def reset(client: redis.Redis, keys: RedisKeys, source: str) -> None:
    client.delete(keys.vista_cursor(source))
