"""Real local SMTP and TCP-syslog servers that can be made to fail for a while, in the
protocol forms of an outage: an SMTP 4xx or 5xx reply, a refused connection, a server
that accepts and then says nothing (SMTP) or whose accept queue is full so that connect
hangs (syslog over TCP)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from tests.conftest import free_port

SMTP_REPLIES = {
    "rcpt_450": "450 4.2.1 Mailbox busy, try again later",
    "data_451": "451 4.3.0 Temporary local problem, try again later",
    "rcpt_550": "550 5.1.1 No such user here",
    "data_554": "554 5.7.1 Message rejected as spam",
}


class Silent:
    """Listeners that never answer: ``greet`` accepts and says nothing (an SMTP server
    that hangs); otherwise a full accept queue, so that connect itself hangs."""

    def __init__(self, port: int, accept: bool) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.held: list[socket.socket] = []
        self.stop = threading.Event()
        if accept:
            self.sock.listen(16)
            self.sock.settimeout(0.1)
            threading.Thread(target=self._accept, daemon=True).start()
        else:
            self.sock.listen(0)
            self.held.append(socket.create_connection(("127.0.0.1", port), timeout=1))

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                self.held.append(self.sock.accept()[0])
            except OSError:
                continue

    def close(self) -> None:
        self.stop.set()
        for s in (*self.held, self.sock):
            _close(s)


def _close(sock: socket.socket) -> None:
    """Close a socket another thread may be blocked on (accept, recv): shut it down
    first, or Linux keeps it listening until that call returns."""
    with contextlib.suppress(OSError):  # not connected: nothing to shut down
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


@dataclass
class FailingSink:
    """An aiosmtpd handler that answers RCPT and DATA with the reply of the current
    outage, and otherwise accepts."""

    messages: list[EmailMessage] = field(default_factory=list)
    mode: str = ""
    until: float = 0.0

    def _reply(self, stage: str) -> str | None:
        if self.mode.startswith(stage) and time.monotonic() < self.until:
            return SMTP_REPLIES[self.mode]
        return None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        reply = self._reply("rcpt")
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        reply = self._reply("data")
        if reply:
            return reply
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


class FailingSmtp:
    def __init__(self) -> None:
        self.sink = FailingSink()
        self.port = free_port()
        self.controller: Controller | None = None
        self._start()

    def _start(self) -> None:
        self.controller = Controller(self.sink, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    @property
    def messages(self) -> list[EmailMessage]:
        return self.sink.messages

    def fail(self, mode: str, seconds: float) -> None:
        """rcpt_450, data_451 (transient), rcpt_550, data_554 (permanent), refused, hang."""
        if mode in SMTP_REPLIES:
            self.sink.mode, self.sink.until = mode, time.monotonic() + seconds
            return
        self._stop()
        silent = Silent(self.port, accept=True) if mode == "hang" else None

        def back() -> None:
            if silent is not None:
                silent.close()
            self._start()

        threading.Timer(seconds, back).start()

    def _stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def close(self) -> None:
        self._stop()


class FakeSyslogTcp:
    """A TCP syslog receiver: newline-framed messages in ``lines``."""

    def __init__(self) -> None:
        self.port = free_port()
        self.lines: list[bytes] = []
        self._lock = threading.Lock()
        self.listener: socket.socket | None = None
        self._serve()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _serve(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(16)
        self.listener = sock
        threading.Thread(target=self._accept, args=(sock,), daemon=True).start()

    def _accept(self, sock: socket.socket) -> None:
        while True:
            try:
                conn = sock.accept()[0]
            except OSError:
                return  # closed
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        buf = b""
        with conn:
            conn.settimeout(5)
            try:
                while chunk := conn.recv(4096):
                    buf += chunk
            except OSError:
                return
        with self._lock:
            self.lines += [line for line in buf.split(b"\n") if line]

    def fail(self, mode: str, seconds: float) -> None:
        """refused (nothing listens) or hang (connect hangs: the accept queue is full)."""
        self.close()
        silent = Silent(self.port, accept=False) if mode == "hang" else None

        def back() -> None:
            if silent is not None:
                silent.close()
            self._serve()

        threading.Timer(seconds, back).start()

    def close(self) -> None:
        if self.listener is not None:
            _close(self.listener)
            self.listener = None
