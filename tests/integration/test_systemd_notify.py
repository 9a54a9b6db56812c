"""systemd's notify protocol: READY=1 after setup, WATCHDOG=1 with each heartbeat,
STOPPING=1 at stop, on a real unix datagram socket as systemd would listen."""

from __future__ import annotations

import socket

from skyline.alerting.thunder.watch import Thunder
from skyline.runtime import systemd
from tests.conftest import wait_for
from tests.integration.pipeline_fixtures import running


def test_a_daemon_tells_systemd_it_is_ready_alive_and_stopping(make_settings, tmp_path,
                                                              monkeypatch) -> None:  # fmt: skip
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    received: list[str] = []
    settings = make_settings(SKYLINE__THUNDER__INTERVAL="0.05", SKYLINE__THUNDER__STALE_AFTER="0")
    with running(Thunder(settings), ready="seen"):
        wait_for(
            lambda: received.append(sock.recv(256).decode()) or received.count("WATCHDOG=1") >= 3
        )
    while True:
        try:
            received.append(sock.recv(256).decode())
        except TimeoutError:
            break
        if received[-1] == "STOPPING=1":
            break
    sock.close()
    assert received[0] == "READY=1"
    assert received[-1] == "STOPPING=1"


def test_notify_is_a_no_op_outside_systemd(monkeypatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert systemd.notify("READY=1") is False
