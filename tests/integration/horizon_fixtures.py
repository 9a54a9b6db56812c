"""A real horizon daemon on free ports, in a thread of the test process, for tests."""

from __future__ import annotations

import pickle
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from skyline.ingest.horizon.agent import Horizon
from skyline.settings import Settings
from tests.conftest import free_port, wait_for


def carbon_frame(points: list[tuple[str, tuple[float, float]]]) -> bytes:
    """A frame exactly as carbon-relay's pickle client sends it (protocol 2)."""
    payload = pickle.dumps(points, protocol=2)
    return struct.pack("!L", len(payload)) + payload


def horizon_env(**extra: str) -> dict[str, str]:
    return {
        "SKYLINE__HORIZON__LINE_PORT": str(free_port()),
        "SKYLINE__HORIZON__PICKLE_PORT": str(free_port()),
        "SKYLINE__HORIZON__UDP_PORT": str(free_port()),
        "SKYLINE__HORIZON__BATCH_INTERVAL": "0.02",
        "SKYLINE__SKYLINE__RETRY_BACKOFF_MAX": "0.2",
        **extra,
    }


@contextmanager
def running_horizon(settings: Settings) -> Iterator[Horizon]:
    daemon = Horizon(settings)
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    wait_for(lambda: getattr(daemon, "listeners", None) and daemon.listeners.ports.get("udp_port"))
    try:
        yield daemon
    finally:
        daemon.stop()
        thread.join(20)
        assert not thread.is_alive(), "horizon did not stop"


def send_tcp(port: int, data: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)


def send_udp(port: int, data: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(data, ("127.0.0.1", port))


def wait_for_points(daemon: Horizon, metric: str, n: int, timeout: float = 10.0):
    """The metric's series once it holds at least ``n`` points."""

    def ready():
        series = daemon.store.read(metric)
        return series if len(series) >= n else None

    return wait_for(ready, timeout=timeout)


def now() -> int:
    return int(time.time())
