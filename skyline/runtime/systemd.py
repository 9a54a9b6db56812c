"""systemd's notify protocol: READY=1 once a daemon is set up, WATCHDOG=1 with every
heartbeat, STOPPING=1 at stop.  A no-op unless systemd set ``NOTIFY_SOCKET``
(``Type=notify`` units, etc/systemd/skyline@.service)."""

from __future__ import annotations

import os
import socket


def notify(state: str) -> bool:
    """Send ``state`` to systemd; False when not run under a notify unit."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.sendto(state.encode(), address)
        except OSError:
            return False
    return True
