"""Real local servers standing in for Slack, PagerDuty, a webhook receiver, SMTP and
syslog.  They record what they receive; a test may make them fail or stall."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller

from tests.conftest import free_port


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in urllib.parse.parse_qs(self.body.decode()).items()}


@dataclass
class Behaviour:
    fail_first: int = 0  # answer 500 to this many requests
    delay: float = 0.0  # sleep before answering


class FakeHttp:
    """A ThreadingHTTPServer on a free port answering by path with JSON."""

    def __init__(self, routes: dict[str, object] | None = None) -> None:
        self.routes = routes or {}
        self.requests: list[Request] = []
        self.behaviour = Behaviour()
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return

            def do_POST(self) -> None:  # noqa: N802
                outer._handle(self)

            do_GET = do_POST  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        path = h.path.split("?")[0]
        with self._lock:
            self.requests.append(Request(path, dict(h.headers), body))
            failing = self.behaviour.fail_first > 0
            if failing:
                self.behaviour.fail_first -= 1
        if self.behaviour.delay:
            time.sleep(self.behaviour.delay)
        if failing:
            status, reply = 500, {"error": "injected failure"}
        else:
            route = self.routes.get(path, {"ok": True})
            status, reply = route if isinstance(route, tuple) else (200, route)
            if callable(reply):
                reply = reply(self)
        data = json.dumps(reply).encode()
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
        except OSError:
            return  # the client gave up (timeout): nothing to answer

    def on(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def fake_slack() -> FakeHttp:
    """chat.postMessage, conversations.list, files_upload_v2's three steps, a webhook."""
    slack = FakeHttp()
    slack.routes.update({
        "/api/chat.postMessage": {"ok": True, "channel": "C0SKY", "ts": "1700000000.000100"},
        "/api/conversations.list": {"ok": True, "channels": [{"id": "C0SKY", "name": "skyline"}]},
        "/api/files.getUploadURLExternal": lambda s: {"ok": True, "file_id": "F0PNG",
                                                      "upload_url": f"{s.url}/upload/F0PNG"},
        "/upload/F0PNG": {"ok": True},
        "/api/files.completeUploadExternal": {"ok": True, "files": [{"id": "F0PNG"}]},
        "/hooks/T0/B0/secret": {"ok": True},
    })  # fmt: skip
    return slack


def fake_pagerduty() -> FakeHttp:
    return FakeHttp({"/v2/enqueue": (202, {"status": "success", "message": "Event processed"})})


@dataclass
class SmtpSink:
    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


class FakeSmtp:
    def __init__(self) -> None:
        self.sink = SmtpSink()
        self.port = free_port()
        self.controller = Controller(self.sink, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    @property
    def messages(self) -> list[EmailMessage]:
        return self.sink.messages

    def close(self) -> None:
        self.controller.stop()


class FakeSyslog:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(5)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"

    def receive(self) -> bytes:
        return self.sock.recvfrom(4096)[0]

    def close(self) -> None:
        self.sock.close()
