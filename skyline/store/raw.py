"""A pipeline without redis-py's per-command overhead, for the ingest hot path only.

redis-py builds, packs and parses every pipelined command in Python (about 5 us per
APPEND here); writing a whole batch of commands as one RESP payload and reading the
replies on one pooled connection costs about a quarter of that (10,000 APPENDs:
13 ms against 45-56 ms, measured on this machine, 2026-11-23).  Everything else
uses redis-py normally, except the analyzer's detector pass (state GET/SET and the
store's incremental reads), which sends tens of thousands of small commands a pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import redis

# pre-encoded commands: one buffer, or a list of buffers sent back to back
Payload = bytes | bytearray | memoryview | Sequence[bytes | memoryview]

APPEND = b"*3\r\n$6\r\nAPPEND\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n"
GET = b"*2\r\n$3\r\nGET\r\n$%d\r\n%b\r\n"
GETRANGE = b"*4\r\n$8\r\nGETRANGE\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n"
SET_HEAD = b"*5\r\n$3\r\nSET\r\n$%d\r\n%b\r\n$%d\r\n"  # SET key value EX s, up to the value


def command(*parts: bytes) -> bytes:
    """One command in RESP: an array of bulk strings."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        out.append(b"$%d\r\n%b\r\n" % (len(part), part))
    return b"".join(out)


def append(key: bytes, data: bytes | memoryview) -> bytes:
    return APPEND % (len(key), key, len(data), data)


def get(key: bytes) -> bytes:
    return GET % (len(key), key)


def getrange(key: bytes, start: int, end: int) -> bytes:
    a, b = b"%d" % start, b"%d" % end
    return GETRANGE % (len(key), key, len(a), a, len(b), b)


def set_ex(key: bytes, value: bytes, seconds: int) -> bytes:
    return SET_HEAD % (len(key), key, len(value)) + value + _ex_tail(seconds)


def _ex_tail(seconds: int) -> bytes:
    """What follows the value in ``SET key value EX seconds``."""
    ttl = b"%d" % seconds
    return b"\r\n$2\r\nEX\r\n$%d\r\n%b\r\n" % (len(ttl), ttl)


def set_ex_records(
    keys: Sequence[bytes],
    fields: list[tuple[Any, ...]],
    fill: Callable[[np.ndarray, np.ndarray], None],
    seconds: int,
) -> list[memoryview]:
    """SET key value EX seconds for each key, each value being one numpy record of
    ``fields`` that ``fill(records, indices)`` writes for the keys at ``indices``.

    The commands are records too: one structured array per key length, its records
    holding the command's RESP text around the value, so the value bytes are written
    once, straight into the payload (no pack and join: about a quarter of the cost,
    docs/performance.md).  Returns one buffer per key length, to send in order; the
    commands (and their replies) are grouped by key length, in ``keys`` order within
    a group."""
    size = np.dtype(fields).itemsize
    tail = _ex_tail(seconds)
    lengths = np.fromiter(map(len, keys), dtype=np.int64, count=len(keys))
    out = []
    for length in np.unique(lengths).tolist():
        at = np.flatnonzero(lengths == length)
        head_size = len(SET_HEAD % (length, b"", size)) + length
        rec = np.empty(
            len(at), dtype=[("head", f"S{head_size}"), *fields, ("tail", f"S{len(tail)}")]
        )
        rec["head"] = [SET_HEAD % (length, keys[i], size) for i in at.tolist()]
        rec["tail"] = tail
        fill(rec, at)
        out.append(rec.data.cast("B"))
    return out


def execute(client: redis.Redis, payload: Payload, replies: int) -> list[Any]:
    """Send pre-encoded commands (one buffer, or several sent in order) and read
    their replies; error replies are returned
    as ``redis.ResponseError`` objects, connection errors are raised (and the
    connection discarded, so nothing half-read is reused)."""
    pool = client.connection_pool
    conn = pool.get_connection()
    try:
        chunks = [payload] if isinstance(payload, bytes | bytearray | memoryview) else list(payload)
        conn.send_packed_command(chunks)
        return read_replies(conn, replies)
    except BaseException:
        conn.disconnect()
        raise
    finally:
        pool.release(conn)


def read_replies(conn: Any, replies: int) -> list[Any]:
    """Read ``replies`` replies from ``conn``, error replies as ``redis.ResponseError``
    objects.  Straight from the connection's parser: ``Connection.read_response``
    formats a host description for a possible error message on every call, which
    costs about 0.7 us a reply, as much as the parsing (``docs/performance.md``).
    Socket errors raise as they do there; the caller discards the connection."""
    read = conn._parser.read_response  # replies; raises on a socket or connection error
    return [read() for _ in range(replies)]


def execute_checked(client: redis.Redis, payload: Payload, replies: int) -> list[Any]:
    """``execute`` for reads and writes that must all succeed: the first error reply
    is raised."""
    out = execute(client, payload, replies)
    for reply in out:
        if isinstance(reply, Exception):
            raise reply
    return out
