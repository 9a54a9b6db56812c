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
from typing import Any, NamedTuple

import numpy as np
import redis

from skyline.store import raw as redis_raw
from skyline.store.cluster import execute_routed_reads
from skyline.store.codec import HEAD_SIZE, RECORD, RECORD_SIZE
from skyline.store.memo import Memo


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


SeriesCommands = Memo[tuple[bytes, bytes, bytes]]


def series_commands(series_key: Callable[[str], str]) -> SeriesCommands:
    """Each metric's series key and the encoded parts of its incremental read, made
    once and kept (encoding them on every pass cost about 3 us a metric, as much
    as Redis takes to answer): (key, ``GETRANGE key`` to finish with the cursor's
    offset by ``raw.TO_END``, and the head's read)."""

    def make(metric: str) -> tuple[bytes, bytes, bytes]:
        key = series_key(metric).encode()
        return key, redis_raw.getrange_head(key), redis_raw.getrange(key, 0, HEAD_SIZE - 1)

    return Memo(make)


class SinceAsk(NamedTuple):
    """The commands of an incremental read of a chunk of metrics (``ask_since``):
    ``commands[j]`` names ``sent[j]``.  ``keys[i]`` is metric i's series key;
    ``inc`` the metrics read past their cursor (a tail and a head each, in that
    order, first), ``full`` those read whole (a GET each, after them)."""

    keys: list[bytes]
    sent: list[bytes]
    commands: list[bytes]
    inc: list[tuple[int, Cursor]]
    full: list[int]


def read_since_chunk(
    client: redis.Redis,
    commands: SeriesCommands,
    metrics: Sequence[str],
    cursors: Sequence[Cursor | None],
    read_whole: WholeReader,
) -> SinceChunk:
    """Read ``metrics`` past ``cursors``; ``read_whole(metric, raw)`` decodes a
    series read whole (``None``: no such key)."""
    ask = ask_since(commands, metrics, cursors)
    replies = execute_routed_reads(client, ask.sent, ask.commands) if ask.sent else []
    return answer_since(client, ask, replies, metrics, read_whole)


def ask_since(
    commands: SeriesCommands, metrics: Sequence[str], cursors: Sequence[Cursor | None]
) -> SinceAsk:
    """The commands that read ``metrics`` past ``cursors`` (``answer_since`` reads
    their replies).  A caller may send them with other commands in one payload."""
    ask = SinceAsk([], [], [], [], [])
    keys, sent, payload, inc, full = ask
    to_end = redis_raw.TO_END
    for i, (cur, (k, head_of_range, read_head)) in enumerate(
        zip(cursors, commands.many(metrics), strict=True)
    ):
        keys.append(k)
        if cur is not None and cur.head:  # the tail, THEN the head
            inc.append((i, cur))
            start = b"%d" % cur.offset  # formatted here: a function call costs 0.1 us
            payload += (to_end % (head_of_range, len(start), start), read_head)
            sent += (k, k)
        else:
            full.append(i)
    payload += [redis_raw.get(keys[i]) for i in full]
    sent += [keys[i] for i in full]
    return ask


def answer_since(
    client: redis.Redis,
    ask: SinceAsk,
    replies: Sequence[Any],
    metrics: Sequence[str],
    read_whole: WholeReader,
) -> SinceChunk:
    """The new records from the ``replies`` to ``ask`` (none an error: a key of another
    type read as None, ``raw.reads_or_raise``); a series
    rewritten since its cursor is read again, whole, here."""
    n, keys, inc = len(metrics), ask.keys, ask.inc
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
    got = list(replies[2 * len(inc) :])
    if stale:  # rewritten since the cursor: read whole, single-key GETs
        got += execute_routed_reads(client, [keys[i] for i in stale],
                                    [redis_raw.get(keys[i]) for i in stale])  # fmt: skip
    for i, raw in zip(ask.full + stale, got, strict=True):
        rec, new[i] = read_whole(metrics[i], raw)
        parts[i] = rec.tobytes()
        whole[i] = True
    counts = np.fromiter(map(len, parts), dtype=np.int64, count=n) // RECORD_SIZE
    return SinceChunk(np.frombuffer(b"".join(parts), RECORD), counts, whole, new)
