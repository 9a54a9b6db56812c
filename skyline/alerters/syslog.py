"""syslog channel: one datagram per alert to a unix socket (default /dev/log) or UDP
host:port, in the BSD syslog form ``<PRI>ident: message`` at severity warning."""

from __future__ import annotations

import logging.handlers
import socket

from skyline.alerters.base import Alert, DeliveryError
from skyline.settings_alerting import SyslogChannel

WARNING = 4


class Syslog:
    name = "syslog"

    def __init__(self, config: SyslogChannel) -> None:
        self.config = config
        host, sep, port = config.address.rpartition(":")
        self.udp = (host, int(port)) if sep and port.isdigit() else None
        facility = logging.handlers.SysLogHandler.facility_names.get(config.facility, 20)
        self.priority = facility * 8 + WARNING

    def message(self, alert: Alert) -> bytes:
        text = alert.summary().replace("\n", " ")
        return f"<{self.priority}>{self.config.ident}: {text}".encode()[:2048]

    def send(self, alert: Alert) -> None:
        data = self.message(alert)
        try:
            if self.udp:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.sendto(data, self.udp)
            else:
                with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                    s.connect(self.config.address)
                    s.send(data)
        except OSError as exc:
            raise DeliveryError(f"syslog {self.config.address}: {exc}") from None
