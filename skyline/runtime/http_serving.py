"""Serving a WSGI app from a daemon: flux and the webapp.

The daemon binds its port itself, so a taken port is a one-line StartupError naming
the key that moves it, then serves the listening socket either with gunicorn
(``fd://N``, gthread workers; production) or with werkzeug's threaded server
inside the daemon (tests, development).  gunicorn is restarted if it dies and is
told to die with the daemon.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from werkzeug.serving import BaseWSGIServer, make_server

from skyline.runtime.daemon import StartupError

log = logging.getLogger("skyline.http")


def bind_listener(host: str, port: int, kind: int, section: str, key: str) -> socket.socket:
    """Bind (and for TCP, listen on) ``host:port``; a failure names ``[section] key``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, kind)
    try:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        if kind == socket.SOCK_STREAM:
            sock.listen(1024)
    except OSError as exc:
        sock.close()
        what = "is in use" if exc.errno == errno.EADDRINUSE else f"cannot be bound ({exc.strerror})"
        raise StartupError(
            f"port {port} on {host} {what}; move it with [{section}] {key} "
            f"or SKYLINE__{section.upper()}__{key.upper()}"
        ) from None
    return sock


class ThreadedServer:
    """A WSGI app on werkzeug's threaded server, inside the daemon."""

    def __init__(self, app: object, sock: socket.socket, name: str) -> None:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        host, port = sock.getsockname()[:2]
        self.server: BaseWSGIServer = make_server(host, port, app, threaded=True, fd=sock.fileno())  # type: ignore[arg-type]
        self.thread = threading.Thread(
            target=self.server.serve_forever, args=(0.1,), name=name, daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    def check(self) -> bool:
        return self.thread.is_alive()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(10)
        self.server.server_close()


@dataclass(frozen=True)
class GunicornOptions:
    app: str  # "module:attribute"
    name: str
    workers: int
    threads: int
    error_log: Path
    timeout: int = 30
    graceful_timeout: int = 5
    keep_alive: int = 5


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        log.warning("could not ask the kernel to stop gunicorn with its daemon")


def _no_control_socket() -> list[str]:
    """Recent gunicorn versions open a control socket at one fixed path per user
    (~/.gunicorn/gunicorn.ctl), shared with every other gunicorn; we do not use it."""
    from gunicorn.config import KNOWN_SETTINGS

    flags = {flag for setting in KNOWN_SETTINGS for flag in (setting.cli or [])}
    return ["--no-control-socket"] if "--no-control-socket" in flags else []


class GunicornServer:
    """gunicorn serving ``options.app`` on the daemon's socket."""

    def __init__(self, sock: socket.socket, options: GunicornOptions) -> None:
        self.sock, self.options = sock, options
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    def command(self) -> list[str]:
        o = self.options
        return [
            sys.executable, "-m", "gunicorn", "--bind", f"fd://{self.sock.fileno()}",
            "--workers", str(o.workers), "--worker-class", "gthread", "--threads", str(o.threads),
            "--timeout", str(o.timeout), "--graceful-timeout", str(o.graceful_timeout),
            "--keep-alive", str(o.keep_alive), "--name", o.name, "--error-logfile", str(o.error_log),
            "--limit-request-line", "8190", "--limit-request-fields", "100",
            *_no_control_socket(), o.app,
        ]  # fmt: skip

    def start(self) -> None:
        self.options.error_log.parent.mkdir(parents=True, exist_ok=True)
        self.sock.set_inheritable(True)
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
        self.proc = subprocess.Popen(
            self.command(), pass_fds=(self.sock.fileno(),), env=env,
            stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent,  # noqa: PLW1509
        )  # fmt: skip
        log.info("%s: gunicorn started (pid %d)", self.options.name, self.proc.pid)

    def check(self) -> bool:
        """Restart gunicorn if it died; False if it had to be restarted."""
        if self.proc is not None and self.proc.poll() is None:
            return True
        code = self.proc.returncode if self.proc else None
        log.error("%s: gunicorn exited (status %s); restarting it", self.options.name, code)
        self.restarts += 1
        self.start()
        return False

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
