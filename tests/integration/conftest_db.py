"""Fixtures and helpers for the SQL tests (imported explicitly by the test modules).

``mysql_url`` gives each test its own throwaway MariaDB/MySQL database on the
server named by ``SKYLINE_TEST_MYSQL_URL``.  When that is unset, the tests start one
MariaDB server of their own for the whole session (``mariadbd`` in a temp dir, on a free
port: tests/integration/private_mariadb.py), so a machine whose shared server is down
or still starting runs the same tests; only with no ``mariadbd`` installed do they skip
(and fail under ``CI=true``: see tests/peers.py).  The tests create and drop their own
databases and users and touch no other database;
``db_url`` runs a test on SQLite and on MariaDB.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL, make_url

from skyline.db import make_engine
from tests.integration.private_mariadb import INSTALL_DB, MARIADBD, PrivateMariaDB
from tests.peers import require

MYSQL_ENV = "SKYLINE_TEST_MYSQL_URL"


_session_server: PrivateMariaDB | None = None
_session_error = ""  # why the private server failed to start, once it has


def mysql_server_url() -> URL:
    """The URL of the test MySQL/MariaDB server: ``SKYLINE_TEST_MYSQL_URL``, else the
    session's private server (started on first use), else skip (fail under CI)."""
    url = os.environ.get(MYSQL_ENV)
    if url:
        return make_url(url)
    return make_url(_private_server().url)


def _private_server() -> PrivateMariaDB:
    global _session_server, _session_error
    if _session_server is None:
        if not (MARIADBD and INSTALL_DB):
            require(
                "MariaDB",
                f"{MYSQL_ENV} is not set (e.g. mysql+pymysql://root@127.0.0.1:3306/skyline_test)"
                " and mariadbd is not installed to start one (apt-get install mariadb-server)",
            )
        if _session_error:  # tried once this session: fail fast rather than wait again
            pytest.fail(f"the private MariaDB did not start: {_session_error}")
        server = PrivateMariaDB(Path(tempfile.mkdtemp(prefix="skyline-mariadb-")))
        try:
            server.start()
        except Exception as exc:
            server.close()
            _session_error = f"{type(exc).__name__}: {exc}"
            raise
        _session_server = server
    return _session_server


def stop_private_server() -> None:
    """Stop the session's private server, if one was started (tests/conftest.py calls
    this when the session ends)."""
    global _session_server
    if _session_server is not None:
        _session_server.close()
        _session_server = None


def url_string(url: URL) -> str:
    return url.render_as_string(hide_password=False)


def server_engine() -> Engine:
    """An engine on the test server with no default database."""
    return make_engine(url_string(mysql_server_url()._replace(database=None)))


@pytest.fixture
def mysql_url() -> Iterator[str]:
    """URL of a fresh, empty database ``skyline_t_<random>``, dropped after the test."""
    name = f"skyline_t_{secrets.token_hex(6)}"
    admin = server_engine()
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    try:
        yield url_string(mysql_server_url().set(database=name))
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh empty database: SQLite in tmp_path, then MariaDB/MySQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db' / 'skyline.db'}"
    return request.getfixturevalue("mysql_url")


@pytest.fixture
def mysql_user(mysql_url: str) -> Iterator[tuple[str, str]]:
    """A throwaway user with a password, allowed to use the ``mysql_url`` database."""
    database = make_url(mysql_url).database
    user = f"skyline_t_{secrets.token_hex(4)}"
    password = f"pw-{secrets.token_hex(12)}"
    admin = server_engine()
    try:
        with admin.begin() as conn:
            conn.execute(text(f"CREATE USER '{user}'@'%' IDENTIFIED BY :pw"), {"pw": password})
            conn.execute(text(f"GRANT ALL PRIVILEGES ON `{database}`.* TO '{user}'@'%'"))
        yield user, password
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP USER IF EXISTS '{user}'@'%'"))
        admin.dispose()


def run_sql_script(engine: Engine, script: str) -> None:
    """Execute a file of ``;``-terminated statements (no ``;`` inside statements)."""
    body = "\n".join(line for line in script.splitlines() if not line.startswith("--"))
    with engine.begin() as conn:
        for statement in body.split(";"):
            if statement.strip():
                conn.exec_driver_sql(statement)


class TcpForwarder:
    """Relays connections on 127.0.0.1:``port`` to ``target``, byte for byte."""

    def __init__(self, port: int, target: tuple[str, int]) -> None:
        self.port = port
        self.target = target
        self.accepted = 0
        self._stopping = threading.Event()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._server: socket.socket | None = None

    def start(self) -> None:
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._server.settimeout(0.1)
        self._spawn(self._accept_loop)

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):  # already shut down by the other side
                sock.shutdown(socket.SHUT_RDWR)
        for thread in list(self._threads):
            thread.join(timeout=5)
        for sock in sockets:
            sock.close()
        if self._server is not None:
            self._server.close()

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        assert self._server is not None
        while not self._stopping.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            upstream = socket.create_connection(self.target, timeout=5)
            upstream.settimeout(None)
            client.settimeout(None)
            with self._lock:
                self.accepted += 1
                self._sockets += [client, upstream]
            self._spawn(self._pump, client, upstream)
            self._spawn(self._pump, upstream, client)

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            return  # the connection was shut down: nothing left to relay
        finally:
            with contextlib.suppress(OSError):  # already shut down by stop()
                sink.shutdown(socket.SHUT_WR)
