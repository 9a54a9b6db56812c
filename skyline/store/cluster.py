"""What a Redis Cluster needs that a single Redis does not, in one place.

Every command Skyline sends names one key, or keys of one hash slot (the streams
share the tag ``{stream}``, see ``keys.py``), so redis-py's cluster client routes
nearly everything by itself.  Three things need help, and each helper below does
exactly the single-Redis thing when the client is not a cluster client:

- ``mget``: an MGET of series spans slots; on a cluster each key is read by a GET
  and the GETs are grouped by node, one raw payload per node (``execute_routed``).
- ``run_script``: a single-key Lua script queued in a cluster pipeline is sent as
  EVAL (the script's text): redis-py's cluster pipeline refuses EVALSHA (a node's
  script cache could miss the script, and a promoted replica's starts empty).
- ``execute_routed``: the raw RESP fast path (``raw.py``) writes one payload per
  batch on one connection; on a cluster the commands are grouped by the node that
  owns each key's slot and each node gets one payload, all sent before any reply
  is read (one round trip per node, concurrently).  Commands that meet a dead node,
  MOVED, TRYAGAIN or CLUSTERDOWN are sent again after the slot map is refreshed,
  up to ``ROUTE_ATTEMPTS`` times; then the error is raised for the caller's outage
  handling.  Only idempotent commands go this way (GET, GETRANGE, SET, SADD,
  EXPIRE) and APPEND, whose repeat after a lost reply stores a point twice, which
  every reader drops (``codec.prepare``: last write wins per timestamp).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, cast

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.commands.core import Script
from redis.exceptions import (
    AskError,
    ClusterDownError,
    RedisClusterException,
    TryAgainError,
)

from skyline.store import raw

ROUTE_ATTEMPTS = 8  # sends of a routed payload; about 6 s of refreshes and waits in all
ROUTE_BACKOFF = 0.05  # the first wait before a resend, doubled each time up to 1 s
REROUTE = (AskError, TryAgainError, ClusterDownError)  # MovedError is an AskError


def is_cluster(client: object) -> bool:
    return isinstance(client, RedisCluster)


def mget(client: redis.Redis, keys: Sequence[str], chunk: int) -> list[bytes | None]:
    """The values of ``keys`` (None where missing or not a string).  On a single
    Redis: MGETs of ``chunk`` keys, all in one raw payload (one round trip, not one per
    MGET: about 1 µs a series less in ``read_many``, docs/performance.md).  On a
    cluster one GET per key in raw RESP, one payload per node (``execute_routed``): 4x
    faster than redis-py's ``mget_nonatomic`` (a cluster-pipelined MGET per slot, and a
    chunk of 200 keys spans ~200 slots)."""
    encoded = [k.encode() for k in keys]
    if not encoded:
        return []
    if is_cluster(client):
        return execute_routed_reads(client, encoded, [raw.get(k) for k in encoded])
    mgets = [raw.command(b"MGET", *encoded[i : i + chunk]) for i in range(0, len(encoded), chunk)]
    replies = raw.execute_checked(client, b"".join(mgets), len(mgets))
    return [value for reply in replies for value in reply]


def run_script(
    script: Script, pipe: Any, keys: Sequence[str], args: Sequence[Any], cluster: bool
) -> None:
    """Queue a single-key ``script`` in ``pipe``: EVALSHA (loaded on demand) on a single
    Redis, EVAL on a cluster (see the module docstring)."""
    if cluster:
        pipe.execute_command("EVAL", script.script, len(keys), *keys, *args)
    else:
        script(keys=list(keys), args=list(args), client=pipe)


class Ready:
    """Replies already read (``send_routed`` on a cluster): ``raw.Pending``'s
    interface, for callers that overlap a routed send with other work."""

    def __init__(self, replies: list[Any]) -> None:
        self._replies = replies

    def read(self) -> list[Any]:
        return self._replies

    def cancel(self) -> None:
        self._replies = []


def send_routed(
    client: redis.Redis, keys: Sequence[bytes], commands: Sequence[bytes | bytearray]
) -> raw.Pending | Ready:
    """``execute_routed`` in two halves: send now, ``read()`` the replies later.  On
    a single Redis the replies are read when asked for, so Redis answers while the
    caller works; on a cluster the routed send (with its resends) is done at once."""
    if not is_cluster(client):
        return raw.send(client, b"".join(commands), len(commands))
    return Ready(_Router(cast(RedisCluster, client)).run(keys, commands))


def execute_routed(
    client: redis.Redis, keys: Sequence[bytes], commands: Sequence[bytes | bytearray]
) -> list[Any]:
    """Send raw RESP ``commands`` (command i names ``keys[i]``) and return the replies
    in order, error replies as exception objects (as ``raw.execute``).  One payload on
    a single Redis; one per node on a cluster."""
    return send_routed(client, keys, commands).read()


def execute_routed_checked(
    client: redis.Redis, keys: Sequence[bytes], commands: Sequence[bytes | bytearray]
) -> list[Any]:
    """``execute_routed`` for commands that must all succeed: the first error reply is
    raised."""
    return raw.raise_first_error(execute_routed(client, keys, commands))


def execute_routed_reads(
    client: redis.Redis, keys: Sequence[bytes], commands: Sequence[bytes | bytearray]
) -> list[Any]:
    """``execute_routed`` for reads: a key holding another type reads as missing (None),
    any other error reply is raised (``raw.reads_or_raise``)."""
    return raw.reads_or_raise(execute_routed(client, keys, commands))


class _Router:
    """One routed send: group by node, send everything, read everything, resend what
    failed after a slot-map refresh."""

    def __init__(self, client: RedisCluster) -> None:
        self.client = client

    def run(self, keys: Sequence[bytes], commands: Sequence[bytes | bytearray]) -> list[Any]:
        out: list[Any] = [None] * len(commands)
        todo = list(range(len(commands)))
        delay = ROUTE_BACKOFF
        for attempt in range(ROUTE_ATTEMPTS):
            failed, error = self._send(keys, commands, todo, out)
            if not failed:
                return out
            if attempt == ROUTE_ATTEMPTS - 1:
                if error is not None:
                    raise error
                return out  # the redirections stay in ``out`` as error replies
            time.sleep(delay)
            delay = min(1.0, delay * 2)
            self._refresh()
            todo = failed
        return out

    def _refresh(self) -> None:
        try:
            self.client.nodes_manager.initialize()
        except (RedisClusterException, redis.RedisError):
            return  # no node answered yet: the next send fails again and we wait more

    def _groups(self, keys: Sequence[bytes], todo: list[int]) -> dict[str, list[int]]:
        groups: dict[str, list[int]] = {}
        self._nodes: dict[str, ClusterNode] = {}
        manager = self.client.nodes_manager
        for i in todo:
            node = manager.get_node_from_slot(self.client.keyslot(keys[i]))
            self._nodes[node.name] = node
            groups.setdefault(node.name, []).append(i)
        return groups

    def _send(
        self,
        keys: Sequence[bytes],
        commands: Sequence[bytes | bytearray],
        todo: list[int],
        out: list[Any],
    ) -> tuple[list[int], Exception | None]:
        """One attempt at the ``todo`` commands: (indexes to send again, last error)."""
        failed: list[int] = []
        error: Exception | None = None
        sent = []
        for name, idx in self._groups(keys, todo).items():
            pool = self.client.get_redis_connection(self._nodes[name]).connection_pool
            conn = pool.get_connection()
            try:
                conn.send_packed_command([b"".join([commands[i] for i in idx])])
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                conn.disconnect()
                pool.release(conn)
                failed += idx
                error = exc
                continue
            sent.append((pool, conn, idx))
        for pool, conn, idx in sent:
            try:
                for i, reply in zip(idx, raw.read_replies(conn, len(idx)), strict=True):
                    out[i] = reply
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                conn.disconnect()  # nothing half-read is reused
                failed += idx
                error = exc
            finally:
                pool.release(conn)
        lost = set(failed)
        lost.update(i for i in todo if isinstance(out[i], REROUTE))
        return sorted(lost), error
