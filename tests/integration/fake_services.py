"""Real local servers standing in for Slack, PagerDuty, a webhook receiver, SMTP and
syslog.  They record what they receive; a test may make them fail or stall."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests
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


@dataclass(frozen=True)
class Plain:
    """A route's reply that is not JSON: ``answer(fake, request)`` gives (status, text)."""

    answer: Callable[[FakeHttp, Request], tuple[int, str]]


@dataclass
class Behaviour:
    fail_first: int = 0  # answer 500 to this many requests
    delay: float = 0.0  # sleep before answering


@dataclass
class Outage:
    """Until ``until`` (time.monotonic()), requests to ``paths`` (None: all) fail as
    ``mode`` says (see FakeHttp.FAILURES; "refused" closes the listener instead)."""

    mode: str
    until: float
    paths: frozenset[str] | None = None
    hang: float = 1.5  # "hang": seconds before the (too late) answer

    def applies(self, path: str) -> bool:
        return time.monotonic() < self.until and (self.paths is None or path in self.paths)


# mode -> (status, content type, body, extra headers); "api_transient"/"api_permanent"
# answer with the API's own error bodies (FakeHttp.api_errors)
FAILURES: dict[str, tuple[int, str, bytes, dict[str, str]]] = {
    "text500": (500, "text/plain", b"Internal Server Error", {}),
    "html500": (500, "text/html", b"<html><body><h1>500 Internal Server Error</h1></body></html>", {}),
    "502": (502, "text/html", b"<html><body><h1>502 Bad Gateway</h1>nginx</body></html>", {}),
    "503": (503, "text/plain", b"Service Unavailable", {}),
    "429": (429, "application/json", b'{"ok":false,"error":"ratelimited"}', {"Retry-After": "1"}),
    "malformed": (200, "text/html", b"<html><body>Welcome to the proxy</body></html>", {}),
}  # fmt: skip


class FakeHttp:
    """A ThreadingHTTPServer on a free port answering by path with JSON.  ``accepted``
    holds the requests answered with their route's normal (successful) reply."""

    def __init__(self, routes: dict[str, object] | None = None,
                 api_errors: dict[str, tuple[int, object]] | None = None) -> None:  # fmt: skip
        self.routes = routes or {}
        self.api_errors = api_errors or {
            "api_transient": (503, {"error": "maintenance"}),
            "api_permanent": (410, {"error": "this hook is gone"}),
        }
        self.requests: list[Request] = []
        self.accepted: list[Request] = []
        self.images: list[bytes] = []  # what a route downloaded (slack_webhook)
        self.behaviour = Behaviour()
        self.outage: Outage | None = None
        self._lock = threading.Lock()
        self.port = free_port()
        self._serve()

    def _serve(self) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return

            def do_POST(self) -> None:  # noqa: N802
                outer._handle(self)

            do_GET = do_POST  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail(self, mode: str, seconds: float, paths: set[str] | None = None,
             hang: float = 1.5) -> None:  # fmt: skip
        """An outage of ``seconds`` in the form ``mode``; "refused" closes the port."""
        self.outage = Outage(mode, time.monotonic() + seconds,
                             frozenset(paths) if paths else None, hang)  # fmt: skip
        if mode == "refused":
            self._stop_listening()
            self._timer = threading.Timer(seconds, self._serve)
            self._timer.start()

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        path = h.path.split("?")[0]
        request = Request(path, dict(h.headers), body)
        with self._lock:
            self.requests.append(request)
            failing = self.behaviour.fail_first > 0
            if failing:
                self.behaviour.fail_first -= 1
        if self.behaviour.delay:
            time.sleep(self.behaviour.delay)
        outage = self.outage
        if outage is not None and outage.applies(path):
            return self._fail(h, outage)
        route = self.routes.get(path, {"ok": True})
        if failing:
            status, ctype, data = 500, "application/json", b'{"error": "injected failure"}'
        elif isinstance(route, Plain):
            status, text = route.answer(self, request)
            ctype, data = "text/plain", text.encode()
        else:
            status, reply = route if isinstance(route, tuple) else (200, route)
            if callable(reply):
                reply = reply(self)
            ctype, data = "application/json", json.dumps(reply).encode()
        answered = self._answer(h, status, ctype, data)
        if answered and not failing and (status < 300 or not isinstance(route, Plain)):
            with self._lock:
                self.accepted.append(request)

    def _fail(self, h: BaseHTTPRequestHandler, outage: Outage) -> None:
        if outage.mode == "hang":
            time.sleep(outage.hang)
            self._answer(h, 504, "text/plain", b"Gateway Timeout")
        elif outage.mode in self.api_errors:
            status, reply = self.api_errors[outage.mode]
            self._answer(h, status, "application/json", json.dumps(reply).encode())
        else:
            status, ctype, data, headers = FAILURES[outage.mode]
            self._answer(h, status, ctype, data, headers)

    @staticmethod
    def _answer(h: BaseHTTPRequestHandler, status: int, ctype: str, data: bytes,
                headers: dict[str, str] | None = None) -> bool:  # fmt: skip
        try:
            h.send_response(status)
            h.send_header("Content-Type", ctype)
            h.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(data)
            return True
        except OSError:
            return False  # the client gave up (timeout): nothing to answer

    def on(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    def delivered(self, path: str) -> int:
        """Requests to ``path`` answered with the route's normal success."""
        return sum(1 for r in self.accepted if r.path == path)

    def _stop_listening(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def close(self) -> None:
        timer = getattr(self, "_timer", None)
        if timer is not None:
            timer.cancel()
            timer.join()
        self._stop_listening()


def slack_webhook(fake: FakeHttp, request: Request) -> tuple[int, str]:
    """Slack's incoming webhook: ``ok`` as text; like Slack it downloads the image of each
    image block while taking the message, and refuses the message (400 ``invalid_blocks``)
    when that fails.  What it downloaded is kept in ``fake.images``."""
    for block in request.json().get("blocks") or []:
        if block.get("type") != "image":
            continue
        try:
            got = requests.get(block["image_url"], timeout=5)
        except requests.RequestException:
            return 400, "invalid_blocks"
        if got.status_code != 200 or not got.headers.get("Content-Type", "").startswith("image/"):
            return 400, "invalid_blocks"
        with fake._lock:
            fake.images.append(got.content)
    return 200, "ok"


def fake_slack() -> FakeHttp:
    """chat.postMessage, conversations.list, files_upload_v2's three steps, an incoming
    webhook (``slack_webhook``)."""
    slack = FakeHttp(api_errors={
        "api_transient": (200, {"ok": False, "error": "internal_error"}),
        "api_permanent": (200, {"ok": False, "error": "channel_not_found"}),
    })  # fmt: skip
    slack.routes.update({
        "/api/chat.postMessage": {"ok": True, "channel": "C0SKY", "ts": "1700000000.000100"},
        "/api/conversations.list": {"ok": True, "channels": [{"id": "C0SKY", "name": "skyline"}]},
        "/api/files.getUploadURLExternal": lambda s: {"ok": True, "file_id": "F0PNG",
                                                      "upload_url": f"{s.url}/upload/F0PNG"},
        "/upload/F0PNG": {"ok": True},
        "/api/files.completeUploadExternal": {"ok": True, "files": [{"id": "F0PNG"}]},
        "/hooks/T0/B0/secret": Plain(slack_webhook),
    })  # fmt: skip
    return slack


def fake_pagerduty() -> FakeHttp:
    """Events API v2: 202 with the dedup_key; its documented 400 and 5xx error bodies."""
    return FakeHttp(
        {"/v2/enqueue": (202, {"status": "success", "message": "Event processed",
                               "dedup_key": "skyline:web.latency"})},
        api_errors={
            "api_transient": (500, {"status": "error", "message": "Internal Server Error"}),
            "api_permanent": (400, {"status": "invalid event", "message": "Event object is invalid",
                                    "errors": ["'routing_key' is invalid"]}),
        },
    )  # fmt: skip


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
