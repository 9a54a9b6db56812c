"""Incremental reads of series: only the bytes appended since a cursor.

A ``Cursor`` is where a reader stopped: the byte offset it had read up to and the
series' first ``HEAD_SIZE`` bytes at the time.  The reader asks, in one pipeline,
for the tail past the offset and *then* for the head; a rewrite (roomba's trim,
a replaced key) is atomic and always changes the head, so a changed head means
the tail may be stale and the series is read whole instead.

``read_since_chunk`` does this for a chunk of metrics with a handful of Python
operations per metric: one raw RESP payload, one join and one ``frombuffer`` for
the new records of all of them (``SinceChunk``).  The analyzer's detector pass
reads every metric every pass this way; ``TimeSeriesStore.read_since_many`` gives
the same per metric.  No command names two keys, so this works on Redis Cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import redis

from skyline.store import raw as redis_raw
from skyline.store.cluster import execute_routed_checked
from skyline.store.codec import HEAD_SIZE, RECORD, RECORD_SIZE


class Cursor(NamedTuple):
    """Where an incremental reader stopped: byte offset and the first ``HEAD_SIZE``
    bytes then."""

    offset: int = 0
    head: bytes = b""


class SinceChunk(NamedTuple):
    """What arrived for a chunk of metrics since their cursors.

    ``records``: every metric's new records back to back, in the chunk's order;
    ``counts[i]``: how many of them are metric i's; ``whole[i]``: metric i was read
    whole (no usable cursor, or the series was rewritten), so its records are the
    entire series; ``cursors[i]``: metric i's cursor after the read."""

    records: np.ndarray
    counts: np.ndarray
    whole: np.ndarray
    cursors: list[Cursor]


WholeReader = Callable[[str, bytes | None], tuple[np.ndarray, Cursor]]


def read_since_chunk(
    client: redis.Redis,
    keys: Sequence[bytes],
    metrics: Sequence[str],
    cursors: Sequence[Cursor | None],
    read_whole: WholeReader,
) -> SinceChunk:
    """Read ``metrics`` (series keys ``keys``) past ``cursors``; ``read_whole(metric,
    raw)`` decodes a series read whole (``None``: no such key)."""
    n = len(metrics)
    inc: list[tuple[int, Cursor]] = []
    full: list[int] = []
    for i, cur in enumerate(cursors):
        if cur is not None and cur.head:
            inc.append((i, cur))
        else:
            full.append(i)
    payload: list[bytes] = []
    sent: list[bytes] = []
    for i, cur in inc:  # the tail, THEN the head; raw RESP: redis-py packs ~4x slower
        k = keys[i]
        payload += (redis_raw.getrange(k, cur.offset, -1), redis_raw.getrange(k, 0, HEAD_SIZE - 1))
        sent += (k, k)
    for i in full:
        payload.append(redis_raw.get(keys[i]))
        sent.append(keys[i])
    replies = execute_routed_checked(client, sent, payload) if sent else []
    parts: list[bytes] = [b""] * n
    new: list[Cursor] = [Cursor()] * n
    whole = np.zeros(n, dtype=bool)
    stale: list[int] = []
    for j, (i, cur) in enumerate(inc):
        tail, head = replies[2 * j] or b"", replies[2 * j + 1] or b""
        if head != cur.head:
            stale.append(i)
            continue
        usable = len(tail) - len(tail) % RECORD_SIZE
        parts[i] = tail if usable == len(tail) else tail[:usable]
        new[i] = Cursor(cur.offset + usable, head)
    got = replies[2 * len(inc) :]
    if stale:  # rewritten since the cursor: read whole, single-key GETs
        got += execute_routed_checked(client, [keys[i] for i in stale],
                                      [redis_raw.get(keys[i]) for i in stale])  # fmt: skip
    for i, raw in zip(full + stale, got, strict=True):
        rec, new[i] = read_whole(metrics[i], raw)
        parts[i] = rec.tobytes()
        whole[i] = True
    counts = np.fromiter(map(len, parts), dtype=np.int64, count=n) // RECORD_SIZE
    return SinceChunk(np.frombuffer(b"".join(parts), RECORD), counts, whole, new)
