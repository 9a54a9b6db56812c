"""A pipeline without redis-py's per-command overhead, for the ingest hot path only.

redis-py builds, packs and parses every pipelined command in Python (about 5 us per
APPEND here); writing a whole batch of commands as one RESP payload and reading the
replies on one pooled connection costs about a quarter of that (10,000 APPENDs:
13 ms against 45-56 ms, measured on this machine, 2026-11-23).  Everything else
uses redis-py normally, except the analyzer's detector pass (state GET/SET and the
store's incremental reads), which sends tens of thousands of small commands a pass,
and the store's reads of many series (``cluster.mget``: a sweep slice's MGETs in one
round trip).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import redis

try:  # what the hiredis reader of redis-py's parser returns for "no whole reply yet"
    from redis._parsers.hiredis import NOT_ENOUGH_DATA as _INCOMPLETE
except ImportError:  # another redis-py: its own read_response is used
    _INCOMPLETE = None

# pre-encoded commands: one buffer, or a list of buffers sent back to back
Payload = bytes | bytearray | memoryview | Sequence[bytes | memoryview]

APPEND = b"*3\r\n$6\r\nAPPEND\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n"
GET = b"*2\r\n$3\r\nGET\r\n$%d\r\n%b\r\n"
GETRANGE_HEAD = b"*4\r\n$8\r\nGETRANGE\r\n$%d\r\n%b\r\n"  # up to the range
GETRANGE = GETRANGE_HEAD + b"$%d\r\n%b\r\n$%d\r\n%b\r\n"
TO_END = b"%b$%d\r\n%b\r\n$2\r\n-1\r\n"  # GETRANGE_HEAD's command, start, end -1
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


def getrange_head(key: bytes) -> bytes:
    """``GETRANGE key`` without its range: keep it per key and finish it in a hot
    loop with ``TO_END % (head, len(start), start)``, ``start`` formatted ``b"%d"``
    (a third of ``getrange``'s cost)."""
    return GETRANGE_HEAD % (len(key), key)


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


class Pending:
    """Commands sent on a pooled connection of their own whose replies are not read
    yet (``send``): Redis works on them while the caller does something else.
    ``read`` them, or ``cancel``; until then the connection stays out of the pool."""

    def __init__(self, pool: Any, conn: Any, replies: int) -> None:
        self._pool, self._conn, self._replies = pool, conn, replies

    def read(self) -> list[Any]:
        """The replies, error replies as ``redis.ResponseError`` objects; connection
        errors are raised (and the connection discarded, so nothing half-read is
        reused)."""
        conn, self._conn = self._conn, None
        if conn is None:
            raise RuntimeError("raw.Pending: the replies were read or cancelled already")
        try:
            return read_replies(conn, self._replies)
        except BaseException:
            conn.disconnect()
            raise
        finally:
            self._pool.release(conn)

    def cancel(self) -> None:
        """Drop the replies: the connection is closed (its unread replies with it)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.disconnect()
            self._pool.release(conn)


def send(client: redis.Redis, payload: Payload, replies: int) -> Pending:
    """Send pre-encoded commands (one buffer, or several sent in order) now; read
    their ``replies`` later with ``Pending.read``."""
    pool = client.connection_pool
    conn = pool.get_connection()
    try:
        chunks = [payload] if isinstance(payload, bytes | bytearray | memoryview) else list(payload)
        conn.send_packed_command(chunks)
    except BaseException:
        conn.disconnect()
        pool.release(conn)
        raise
    return Pending(pool, conn, replies)


def execute(client: redis.Redis, payload: Payload, replies: int) -> list[Any]:
    """Send pre-encoded commands (one buffer, or several sent in order) and read
    their replies; error replies are returned as ``redis.ResponseError`` objects,
    connection errors are raised (and the connection discarded, so nothing
    half-read is reused)."""
    return send(client, payload, replies).read()


def read_replies(conn: Any, replies: int) -> list[Any]:
    """Read ``replies`` replies from ``conn``, error replies as ``redis.ResponseError``
    objects (redis-py's subclasses: ``MovedError``, ...).  Socket errors raise as in
    redis-py; the caller discards the connection.

    With hiredis (a dependency) the replies come straight from the connection's
    hiredis reader, refilled by the parser's own socket read: redis-py's
    ``read_response`` checks every reply for push messages and connection errors
    in Python, and its ``Connection.read_response`` formats a host description
    too: 0.65 us a reply against 0.5 (docs/performance.md).  Push messages (RESP3
    only; Skyline's clients speak RESP2) are not replies and are dropped."""
    parser = conn._parser
    reader = getattr(parser, "_reader", None)
    if reader is None or _INCOMPLETE is None:  # the pure-Python parser
        read = parser.read_response
        return [read() for _ in range(replies)]
    gets, refill = reader.gets, parser.read_from_socket
    push = getattr(parser, "_hiredis_PushNotificationType", None) or ()
    out: list[Any] = []
    while len(out) < replies:
        reply = gets()
        if type(reply) is bytes:  # most replies: skip the checks below
            out.append(reply)
        elif reply is _INCOMPLETE:
            refill()
        elif isinstance(reply, redis.ConnectionError):  # e.g. LOADING: raised, as in redis-py
            raise reply
        elif not isinstance(reply, push):
            out.append(reply)
    return out


def execute_checked(client: redis.Redis, payload: Payload, replies: int) -> list[Any]:
    """``execute`` for reads and writes that must all succeed: the first error reply
    is raised."""
    return raise_first_error(execute(client, payload, replies))


def wrong_type(reply: Any) -> bool:
    """An error reply saying the key holds another type than the command reads (where
    a single Redis's MGET answers nil for the key)."""
    return isinstance(reply, redis.ResponseError) and str(reply).startswith("WRONGTYPE")


def reads_or_raise(replies: list[Any]) -> list[Any]:
    """The replies of reads, a key holding another type (a WRONGTYPE error reply: a key
    under Skyline's prefix that something else wrote) read as missing (None), as a
    single Redis's MGET answers it, so that one such key cannot fail the reads of
    every key sent with it; any other error reply is raised.  One pass; the list is
    copied only when it holds such a reply."""
    out = replies
    for i, reply in enumerate(replies):
        if type(reply) is bytes or not isinstance(reply, Exception):  # bytes: most, fast
            continue
        if not wrong_type(reply):
            raise reply
        if out is replies:
            out = list(replies)
        out[i] = None
    return out


def pipeline_reads(pipe: Any) -> list[Any]:
    """A redis-py pipeline of reads executed, its results as ``reads_or_raise`` gives
    them (a key of another type: None)."""
    return reads_or_raise(pipe.execute(raise_on_error=False))


def raise_first_error(replies: list[Any]) -> list[Any]:
    """``replies``, unless one is an error reply: then the first is raised."""
    for reply in replies:
        if type(reply) is not bytes and isinstance(reply, Exception):  # bytes: most, fast
            raise reply
    return replies
