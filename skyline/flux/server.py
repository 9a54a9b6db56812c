"""Serving the flux app: sockets bound by the daemon, gunicorn or a threaded server.

The daemon binds the HTTP port itself (so a taken port is a one-line StartupError
naming ``[flux] port``) and hands the listening socket to gunicorn as
``fd://N``; gunicorn's workers import ``skyline.flux.wsgi``.  Workers add their
counters to a Redis hash every few seconds; the daemon takes them from there and
publishes them with its own.
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
import time

import redis
from sqlalchemy import Engine
from werkzeug.serving import BaseWSGIServer, make_server

from skyline.daemon import OUTAGES, Counters, StartupError
from skyline.flux.app import Context, create_app
from skyline.flux.keys import KeyRing
from skyline.flux.limits import RateLimiter
from skyline.flux.writer import GraphiteForwarder, Ingest
from skyline.redis_keys import RedisKeys
from skyline.settings import Settings
from skyline.timeseries import TimeSeriesStore

log = logging.getLogger("skyline.flux")
WORKER_COUNTERS = "flux-http"  # keys.counters(...) hash the workers add to
PUSH_EVERY = 2.0


def bind_error(exc: OSError, bind: str, port: int, key: str) -> str:
    what = "is in use" if exc.errno == errno.EADDRINUSE else f"cannot be bound ({exc.strerror})"
    return (
        f"port {port} on {bind} {what}; move it with [flux] {key} or SKYLINE__FLUX__{key.upper()}"
    )


def bind(host: str, port: int, kind: int, key: str) -> socket.socket:
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
        raise StartupError(bind_error(exc, host, port, key)) from None
    return sock


def make_context(
    settings: Settings, client: redis.Redis, counters: Counters, engine: Engine | None
) -> tuple[Context, GraphiteForwarder | None]:
    cfg = settings.flux
    keys = RedisKeys(settings.redis.prefix)
    forwarder = None
    if cfg.forward_graphite:
        forwarder = GraphiteForwarder(
            cfg.forward_graphite, cfg.forward_queue, counters, settings.skyline.retry_backoff_max
        )
        forwarder.start()
    ingest = Ingest(
        TimeSeriesStore(client, keys), counters, max_age=cfg.max_age,
        max_future=cfg.max_future, fill_max_age=settings.skyline.full_duration,
        forwarder=forwarder,
    )  # fmt: skip
    limiter = (
        RateLimiter(client, keys, cfg.rate_limit, cfg.rate_limit_window) if cfg.rate_limit else None
    )
    ctx = Context(cfg, ingest, KeyRing(engine, cfg.key_cache_ttl), limiter, counters, client)
    return ctx, forwarder


class CounterPusher(threading.Thread):
    """In a gunicorn worker: adds the worker's counters to the shared hash."""

    def __init__(self, client: redis.Redis, keys: RedisKeys, counters: Counters) -> None:
        super().__init__(name="flux-counter-pusher", daemon=True)
        self.redis, self.key, self.counters = client, keys.counters(WORKER_COUNTERS), counters

    def run(self) -> None:
        while True:
            time.sleep(PUSH_EVERY)
            values = self.counters.take()
            if not values:
                continue
            try:
                pipe = self.redis.pipeline(transaction=False)
                for name, n in values.items():
                    pipe.hincrbyfloat(self.key, name, n)
                pipe.expire(self.key, 600)
                pipe.execute()
            except OUTAGES:
                for name, n in values.items():
                    self.counters.inc(name, n)  # try again next time


def take_worker_counters(client: redis.Redis, keys: RedisKeys) -> dict[str, float]:
    pipe = client.pipeline(transaction=True)
    pipe.hgetall(keys.counters(WORKER_COUNTERS))
    pipe.delete(keys.counters(WORKER_COUNTERS))
    raw = pipe.execute()[0]
    return {k.decode(): float(v) for k, v in raw.items()}


class ThreadedServer:
    """The app on werkzeug's threaded server, in the daemon (tests, development)."""

    def __init__(self, ctx: Context, sock: socket.socket) -> None:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        host, port = sock.getsockname()[:2]
        self.server: BaseWSGIServer = make_server(
            host, port, create_app(ctx), threaded=True, fd=sock.fileno()
        )
        self.thread = threading.Thread(
            target=self.server.serve_forever, args=(0.1,), name="flux-http", daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    def check(self) -> bool:
        return self.thread.is_alive()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(10)
        self.server.server_close()


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class GunicornServer:
    """gunicorn (gthread workers) serving ``skyline.flux.wsgi:app`` on our socket."""

    def __init__(self, settings: Settings, sock: socket.socket) -> None:
        self.settings, self.sock = settings, sock
        self.proc: subprocess.Popen | None = None
        self.restarts = 0

    def command(self) -> list[str]:
        cfg = self.settings.flux
        return [
            sys.executable, "-m", "gunicorn", "--bind", f"fd://{self.sock.fileno()}",
            "--workers", str(cfg.workers), "--worker-class", "gthread",
            "--threads", str(cfg.threads), "--timeout", "30", "--graceful-timeout", "5",
            "--keep-alive", "30", "--name", "skyline-flux",
            "--error-logfile", str(self.settings.var_path / "log" / "flux-gunicorn.log"),
            "--limit-request-line", "8190", "--limit-request-fields", "100",
            "skyline.flux.wsgi:app",
        ]  # fmt: skip

    def start(self) -> None:
        (self.settings.var_path / "log").mkdir(parents=True, exist_ok=True)
        self.sock.set_inheritable(True)
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
        self.proc = subprocess.Popen(
            self.command(), pass_fds=(self.sock.fileno(),), env=env,
            stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent,  # noqa: PLW1509
        )  # fmt: skip
        log.info("gunicorn started (pid %d)", self.proc.pid)

    def check(self) -> bool:
        """Restart gunicorn if it died; False if it had to be restarted."""
        if self.proc is not None and self.proc.poll() is None:
            return True
        code = self.proc.returncode if self.proc else None
        log.error("gunicorn exited (status %s); restarting it", code)
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
