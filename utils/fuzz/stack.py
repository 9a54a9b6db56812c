"""A private Skyline for fuzzing: its own redis-server, SQLite database and daemons.

horizon, flux (gunicorn, as in production) and the webapp run as real daemons
(``python -m skyline.runtime NAME``) on free loopback ports, with a flux key and an
API token created through Skyline's own code.  A sampler thread records each
daemon's peak resident memory, children (gunicorn workers) included.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import redis

from skyline.db import make_engine, upgrade
from skyline.ingest.flux.keys import add_key
from skyline.settings import Settings, load_settings
from skyline.store.connection import _server_binary as redis_server_binary
from skyline.store.connection import connect
from skyline.store.keys import RedisKeys
from skyline.store.timeseries import TimeSeriesStore
from skyline.webapp import users

DAEMONS = ("horizon", "flux", "webapp")
KEY_NAMESPACE = "fz"
FUZZ_PASSWORD = "fuzz-password-1234"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout:.0f} s")


class Stack:
    """``with Stack() as stack:`` starts everything; leaving stops it and removes its files."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="skyline-fuzz-"))
        self.ports = {
            "redis": free_port(),
            "line": free_port(),
            "pickle": free_port(),
            "udp": free_port(socket.SOCK_DGRAM),
            "flux": free_port(),
            "statsd": free_port(socket.SOCK_DGRAM),
            "webapp": free_port(),
        }
        self.env = {
            **os.environ,
            "OPENBLAS_NUM_THREADS": "1",
            "SKYLINE_CONF": str(self.dir / "skyline.conf"),
            "SKYLINE__SKYLINE__VAR_DIR": str(self.dir / "var"),
            "SKYLINE__REDIS__URL": f"redis://127.0.0.1:{self.ports['redis']}/0",
            "SKYLINE__HORIZON__LINE_PORT": str(self.ports["line"]),
            "SKYLINE__HORIZON__PICKLE_PORT": str(self.ports["pickle"]),
            "SKYLINE__HORIZON__UDP_PORT": str(self.ports["udp"]),
            "SKYLINE__FLUX__PORT": str(self.ports["flux"]),
            "SKYLINE__FLUX__STATSD_PORT": str(self.ports["statsd"]),
            "SKYLINE__FLUX__STATSD_FLUSH_INTERVAL": "1",
            "SKYLINE__FLUX__WORKERS": "2",
            "SKYLINE__FLUX__RATE_LIMIT": "0",
            "SKYLINE__WEBAPP__PORT": str(self.ports["webapp"]),
        }
        (self.dir / "skyline.conf").write_text("")
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.peak_rss: dict[str, int] = {}
        self._stop_sampler = threading.Event()
        self.settings: Settings
        self.flux_key = ""
        self.api_token = ""

    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.procs["redis"] = subprocess.Popen(
            [shutil.which("redis-server") or redis_server_binary(), "--port", str(self.ports["redis"]),
             "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_port(self.ports["redis"])
        self.settings = load_settings(env=self.env)
        engine = make_engine(self.settings.database_url)
        self.settings.var_path.mkdir(parents=True, exist_ok=True)
        upgrade(self.settings.database_url)
        _, self.flux_key = add_key(engine, KEY_NAMESPACE, "fuzz")
        users.add_user(engine, "fuzz", FUZZ_PASSWORD, "admin")
        self.api_token = users.create_token(engine, "fuzz", "fuzz")
        engine.dispose()
        log_dir = self.dir / "log"
        log_dir.mkdir()
        for name in DAEMONS:
            out = open(log_dir / f"{name}.out", "ab")  # noqa: SIM115  closed with the process
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "skyline.runtime", name], cwd=self.dir, env=self.env,
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        for port in ("line", "pickle", "flux", "webapp"):
            wait_port(self.ports[port])
        threading.Thread(target=self._sample, name="rss-sampler", daemon=True).start()

    def _sample(self) -> None:
        while not self._stop_sampler.wait(0.2):
            for name, proc in list(self.procs.items()):
                try:
                    p = psutil.Process(proc.pid)
                    rss = p.memory_info().rss + sum(
                        c.memory_info().rss for c in p.children(recursive=True)
                    )
                except psutil.Error:
                    continue
                self.peak_rss[name] = max(self.peak_rss.get(name, 0), rss)

    def dead(self) -> list[str]:
        """Daemons that exited (a crash: nothing here stops them before ``stop``)."""
        return [name for name, proc in self.procs.items() if proc.poll() is not None]

    def store(self) -> TimeSeriesStore:
        return TimeSeriesStore(connect(self.settings), RedisKeys(self.settings.redis.prefix))

    def redis(self) -> redis.Redis:
        return redis.Redis(port=self.ports["redis"])

    def log_text(self, name: str) -> str:
        path = self.dir / "var" / "log" / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        self._stop_sampler.set()
        for name in (*reversed(DAEMONS), "redis"):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
