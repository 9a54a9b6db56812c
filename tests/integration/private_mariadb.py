"""A MariaDB server of the test's own (``mariadbd`` in a temp dir, on a free port), for
tests that must freeze the database (SIGSTOP) or stop it: never the shared server.

``private_mariadb`` yields a handle with ``url`` (a fresh database), ``freeze()`` and
``thaw()``; the server is shut down and its directory removed after the test.  The
test is skipped when ``mariadbd``/``mariadb-install-db`` are not installed.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import free_port
from tests.peers import require

MARIADBD = shutil.which("mariadbd") or shutil.which("mariadbd", path="/usr/sbin:/usr/bin")
INSTALL_DB = shutil.which("mariadb-install-db")


class PrivateMariaDB:
    def __init__(self, root: Path) -> None:
        self.root, self.port = root, free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"mysql+pymysql://root@127.0.0.1:{self.port}/skyline"
        self.frozen = False

    def start(self) -> None:
        data = self.root / "data"
        subprocess.run([INSTALL_DB, "--no-defaults", f"--datadir={data}",  # type: ignore[list-item]
                        "--auth-root-authentication-method=normal", "--skip-test-db"],
                       check=True, capture_output=True, timeout=120)  # fmt: skip
        args = [MARIADBD, "--no-defaults", f"--datadir={data}", f"--port={self.port}",
                "--bind-address=127.0.0.1", f"--socket={self.root / 'sock'}",
                f"--pid-file={self.root / 'pid'}", "--skip-log-bin",
                "--innodb-buffer-pool-size=16M", f"--log-error={self.root / 'err.log'}"]  # fmt: skip
        if os.geteuid() == 0:
            args.append("--user=root")
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # type: ignore[arg-type]
        server = create_engine(f"mysql+pymysql://root@127.0.0.1:{self.port}/")
        deadline = time.monotonic() + 60
        while True:
            try:
                with server.begin() as conn:
                    conn.execute(
                        text("CREATE DATABASE skyline CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
                    )
                break
            except Exception:  # not up yet: retried until the deadline, then raised
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
                time.sleep(0.2)
        server.dispose()

    def freeze(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)
        self.frozen = False

    def stop(self) -> None:
        if self.process is None:
            return
        if self.frozen:
            self.thaw()
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def close(self) -> None:
        """Stop the server and remove its directory."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def private_mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateMariaDB]:
    if not (MARIADBD and INSTALL_DB):
        require(
            "mariadbd",
            "mariadbd and mariadb-install-db are needed (apt-get install mariadb-server)",
        )
    root = tmp_path_factory.mktemp("mariadb")
    server = PrivateMariaDB(root)
    try:
        server.start()
        yield server
    finally:
        server.close()
