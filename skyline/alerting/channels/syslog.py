"""syslog channel: one message per alert in the BSD syslog form ``<PRI>ident: message``
at severity warning, to a unix datagram socket (default /dev/log), or to host:port over
UDP or TCP (``[alerters.syslog] transport``).

Over TCP each message is one line (newline framing, RFC 6587 non-transparent framing);
a refused connection, a connect or send that hangs past ``[alerters] timeout`` and a
connection reset are retried like any transient failure.  UDP and unix datagrams have
no answer: a send the kernel accepts counts as delivered.
"""

from __future__ import annotations

import logging.handlers
import socket
from typing import Literal

from skyline.alerting.base import Alert, DeliveryError, Progress
from skyline.alerting.channels import ChannelSpec, register
from skyline.settings.base import Section, give_up_after, key

WARNING = 4


class SyslogChannel(Section):
    """syslog alerts: [alerters.syslog]."""

    address: str = key("/dev/log", "A unix socket path, or host:port (UDP or TCP, see transport).")
    transport: Literal["udp", "tcp"] = key(
        "udp",
        "For a host:port address: udp (fire and forget: no failure is seen) or tcp "
        "(newline-framed; a refused or hung connection is retried).",
    )
    facility: str = key("local4", "Syslog facility.")
    ident: str = key("skyline", "Program name in each message.")
    give_up_after: float = give_up_after()


class Syslog:
    name = "syslog"

    def __init__(self, config: SyslogChannel, timeout: float = 10.0) -> None:
        self.config = config
        self.timeout = timeout
        host, sep, port = config.address.rpartition(":")
        self.inet = (host, int(port)) if sep and port.isdigit() else None
        facility = logging.handlers.SysLogHandler.facility_names.get(config.facility, 20)
        self.priority = facility * 8 + WARNING

    def message(self, alert: Alert) -> bytes:
        text = alert.summary().replace("\n", " ")
        return f"<{self.priority}>{self.config.ident}: {text}".encode()[:2048]

    def send(self, alert: Alert, progress: Progress) -> None:
        data = self.message(alert)
        try:
            if self.inet and self.config.transport == "tcp":
                with socket.create_connection(self.inet, timeout=self.timeout) as s:
                    s.sendall(data + b"\n")
            elif self.inet:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.sendto(data, self.inet)
            else:
                with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                    s.settimeout(self.timeout)
                    s.connect(self.config.address)
                    s.send(data)
        except OSError as exc:
            raise DeliveryError(
                f"syslog {self.config.address}: {type(exc).__name__}: {exc}"
            ) from None


register(ChannelSpec(
    "syslog", SyslogChannel, lambda name, config, timeout: Syslog(config, timeout)
))  # fmt: skip
