"""A real Graphite on loopback for vista's tests: Debian's carbon-cache writing whisper
files under a temp dir, and Debian's graphite-web reading them, served by the system
Python's wsgiref (graphite-web and carbon are system packages, not in the venv)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.conftest import free_port, wait_for
from tests.peers import require

SYSTEM_PYTHON = "/usr/bin/python3"

_RUNNER = """
import os, sys
sys.path.insert(0, {dir!r})
os.environ["DJANGO_SETTINGS_MODULE"] = "graphite.settings"
os.environ["GRAPHITE_SETTINGS_MODULE"] = "vista_graphite_settings"
from wsgiref.simple_server import make_server, WSGIRequestHandler
from django.core.wsgi import get_wsgi_application

class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass

make_server("127.0.0.1", {port}, get_wsgi_application(), handler_class=Quiet).serve_forever()
"""

_SETTINGS = """
SECRET_KEY = "vista-test"
STORAGE_DIR = {storage!r}
WHISPER_DIR = {whisper!r}
LOG_DIR = {log!r}
INDEX_FILE = {storage!r} + "/index"
CARBONLINK_HOSTS = ["127.0.0.1:{query_port}:a"]
DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": {storage!r} + "/graphite.db"}}}}
USE_WORKER_POOL = False
TAGDB = ""
"""


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PYTHONWARNINGS"] = "ignore"
    return env


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class Graphite:
    def __init__(self, directory: Path) -> None:
        carbon = shutil.which("carbon-cache")
        if carbon is None or not Path(SYSTEM_PYTHON).exists():
            require("graphite-carbon", "apt-get install graphite-carbon graphite-web")
        probe = subprocess.run([SYSTEM_PYTHON, "-c", "import graphite, django, whisper"],
                               capture_output=True, env=_clean_env(), timeout=60)  # fmt: skip
        if probe.returncode:
            require("graphite-web", "apt-get install graphite-web")
        self.carbon = carbon
        self.dir = directory
        self.storage = directory / "storage"
        self.whisper = self.storage / "whisper"
        for d in (self.whisper, self.storage / "log" / "webapp", directory / "run"):
            d.mkdir(parents=True, exist_ok=True)
        self.line_port, self.query_port, self.web_port = free_port(), free_port(), free_port()
        self.procs: list[subprocess.Popen] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def start(self) -> None:
        conf = self.dir / "carbon.conf"
        settings = {
            "STORAGE_DIR": self.storage, "LOCAL_DATA_DIR": self.whisper,
            "WHITELISTS_DIR": self.storage / "lists", "LOG_DIR": self.storage / "log",
            "PID_DIR": self.dir / "run", "ENABLE_TAGS": "False",
            "LINE_RECEIVER_INTERFACE": "127.0.0.1", "LINE_RECEIVER_PORT": self.line_port,
            "PICKLE_RECEIVER_INTERFACE": "127.0.0.1", "PICKLE_RECEIVER_PORT": free_port(),
            "CACHE_QUERY_INTERFACE": "127.0.0.1", "CACHE_QUERY_PORT": self.query_port,
            "ENABLE_UDP_LISTENER": "False", "ENABLE_MANHOLE": "False", "ENABLE_AMQP": "False",
            "MAX_CREATES_PER_MINUTE": "inf", "MAX_UPDATES_PER_SECOND": "inf",
            "MAX_CACHE_SIZE": "inf", "USER": "",
        }  # fmt: skip
        conf.write_text("[cache]\n" + "".join(f"{k} = {v}\n" for k, v in settings.items()))
        (self.dir / "storage-schemas.conf").write_text(
            "[all]\npattern = .*\nretentions = 60s:40d\n"
        )
        (self.dir / "storage-aggregation.conf").write_text(
            "[all]\npattern = .*\nxFilesFactor = 0\naggregationMethod = average\n"
        )
        log = open(self.dir / "carbon.log", "wb")  # noqa: SIM115 - owned by the process
        self.procs.append(subprocess.Popen(
            [self.carbon, f"--config={conf}", f"--pidfile={self.dir / 'run' / 'cache.pid'}",
             "--nodaemon", "start"],
            cwd=self.dir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env={**_clean_env(), "GRAPHITE_ROOT": str(self.dir)}, start_new_session=True,
        ))  # fmt: skip
        (self.dir / "vista_graphite_settings.py").write_text(_SETTINGS.format(
            storage=str(self.storage), whisper=str(self.whisper) + "/",
            log=str(self.storage / "log" / "webapp"), query_port=self.query_port,
        ))  # fmt: skip
        runner = self.dir / "serve_graphite.py"
        runner.write_text(_RUNNER.format(dir=str(self.dir), port=self.web_port))
        web_log = open(self.dir / "web.log", "wb")  # noqa: SIM115 - owned by the process
        self.procs.append(subprocess.Popen(
            [SYSTEM_PYTHON, str(runner)], cwd=self.dir, stdin=subprocess.DEVNULL,
            stdout=web_log, stderr=subprocess.STDOUT, env=_clean_env(), start_new_session=True,
        ))  # fmt: skip
        wait_for(lambda: _listening(self.line_port) and _listening(self.web_port), timeout=60,
                 interval=0.2)  # fmt: skip

    def send(self, lines: list[tuple[str, float, float]]) -> None:
        with socket.create_connection(("127.0.0.1", self.line_port), timeout=10) as s:
            s.sendall("".join(f"{n} {v} {int(t)}\n" for n, v, t in lines).encode())
        time.sleep(0.1)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
