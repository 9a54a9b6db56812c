"""The SQL schema: models vs sql/skyline.sql vs migrations (SQLite), engines, wait_for_db.

MariaDB/MySQL counterparts live in tests/integration/test_db_mysql.py.
"""

from __future__ import annotations

import logging
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import BigInteger, DateTime, Engine, UniqueConstraint, inspect, text
from sqlalchemy.exc import IntegrityError

from skyline.db import (
    Anomaly,
    Base,
    DatabaseUnavailable,
    SchemaOutOfDate,
    check_current,
    current_revision,
    head_revision,
    make_engine,
    schema_diff,
    upgrade,
    wait_for_db,
)
from skyline.db.ddl import render_mysql_ddl
from skyline.db.migrate import alembic_config

REPO = Path(__file__).resolve().parents[2]
SQL_FILE = REPO / "sql" / "skyline.sql"
TIME_COLUMN = re.compile(r"(_at|timestamp|^last_\w+|^until)$")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'var' / 'skyline.db'}"


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(sqlite_url)
    yield engine
    engine.dispose()


def test_sql_file_matches_models() -> None:
    assert SQL_FILE.read_text() == render_mysql_ddl(), (
        "sql/skyline.sql is out of date: regenerate with python -m skyline.db.ddl > sql/skyline.sql"
    )


def test_ddl_module_prints_the_ddl() -> None:
    out = subprocess.run(
        [sys.executable, "-W", "error", "-m", "skyline.db.ddl"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    assert out.stdout == render_mysql_ddl()
    assert out.stdout.endswith(";\n")
    assert "python -m skyline.db.ddl > sql/skyline.sql" in out.stdout.splitlines()[1]


def test_upgrade_creates_exactly_the_models(sqlite_url: str, engine: Engine) -> None:
    upgrade(sqlite_url)
    assert schema_diff(engine) == []
    assert current_revision(engine) == head_revision()
    check_current(engine)
    upgrade(sqlite_url)  # idempotent at head
    assert schema_diff(engine) == []


def test_schema_diff_notices_drift(sqlite_url: str, engine: Engine) -> None:
    upgrade(sqlite_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP INDEX ix_anomalies_timestamp")
    diff = schema_diff(engine)
    assert [d[0] for d in diff] == ["add_index"]


def test_check_current_on_empty_database(engine: Engine) -> None:
    assert current_revision(engine) is None
    with pytest.raises(SchemaOutOfDate) as info:
        check_current(engine)
    message = str(info.value)
    assert "\n" not in message
    assert "run `skyline db upgrade`" in message
    assert head_revision() in message


def test_check_current_on_older_revision(engine: Engine, sqlite_url: str) -> None:
    upgrade(sqlite_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0000'")
    with pytest.raises(SchemaOutOfDate, match="at revision 0000 .* expects revision"):
        check_current(engine)


def test_migrations_ignore_alembic_ini_in_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_url: str, engine: Engine
) -> None:
    (tmp_path / "alembic.ini").write_text("[alembic]\nscript_location = /nonexistent\n")
    monkeypatch.chdir(tmp_path)
    upgrade(sqlite_url)
    check_current(engine)


def test_downgrade_to_base_drops_every_table(sqlite_url: str, engine: Engine) -> None:
    upgrade(sqlite_url)
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "base")
    assert inspect(engine).get_table_names() == ["alembic_version"]
    assert current_revision(engine) is None


def test_every_foreign_key_is_indexed() -> None:
    for table in Base.metadata.sorted_tables:
        leading = [list(table.primary_key.columns)]
        leading += [list(ix.columns) for ix in table.indexes]
        leading += [list(c.columns) for c in table.constraints if isinstance(c, UniqueConstraint)]
        for fk in table.foreign_key_constraints:
            cols = list(fk.columns)
            assert any(c[: len(cols)] == cols for c in leading), f"{table.name}: {fk.name}"


def test_names_are_explicit_and_fit_mysql() -> None:
    for table in Base.metadata.sorted_tables:
        for item in [*table.constraints, *table.indexes]:
            assert item.name, f"unnamed constraint on {table.name}"
            assert len(item.name) <= 64, item.name


def test_times_are_epoch_seconds() -> None:
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            assert not isinstance(column.type, DateTime), f"{table.name}.{column.name}"
            if TIME_COLUMN.search(column.name):
                assert isinstance(column.type, BigInteger), f"{table.name}.{column.name}"


def test_sqlite_engine_settings(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a' / 'b' / 'skyline.db'}"
    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()
    assert (tmp_path / "a" / "b" / "skyline.db").exists()


def test_sqlite_transactions_roll_back_ddl(engine: Engine) -> None:
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER PRIMARY KEY)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    assert "t" not in inspect(engine).get_table_names()


def test_make_engine_rejects_other_databases() -> None:
    with pytest.raises(ValueError, match="unsupported database URL .*\\*\\*\\*"):
        make_engine("postgresql://u:hunter2@localhost/db")


def test_anomaly_defaults_on_sqlite(sqlite_url: str, engine: Engine) -> None:
    upgrade(sqlite_url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO metrics (name, created_at) VALUES ('a.b', 1)"))
        row = conn.execute(text("SELECT * FROM metrics")).mappings().one()
    assert row["learn_full_duration_days"] == 30
    assert row["max_percent_diff_from_origin"] == 7.0
    assert row["inactive"] == 0
    assert Anomaly.__table__.c.verdict.default.arg == "pending"


def _refused_mysql_url(password: str) -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"mysql+pymysql://skyline:{password}@127.0.0.1:{port}/skyline"


@pytest.mark.timeout(30)
def test_wait_for_db_stop_interrupts_backoff(caplog: pytest.LogCaptureFixture) -> None:
    password = "s3cret-Pw-7f2a"
    log = logging.getLogger("test.db.wait")
    stop = threading.Event()
    # backoff_max is far above the test's timeout: only `stop` can end the wait.
    timer = threading.Timer(1.2, stop.set)
    timer.start()
    with caplog.at_level(logging.WARNING, logger=log.name), pytest.raises(DatabaseUnavailable):
        wait_for_db(_refused_mysql_url(password), backoff_max=600.0, stop=stop, log=log)
    timer.cancel()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) >= 2
    assert all("unreachable" in w and "skyline:***@127.0.0.1" in w for w in warnings)
    delays = [float(re.search(r"retrying in ([\d.]+) s", w).group(1)) for w in warnings]
    assert delays[:2] == [0.5, 1.0]
    assert password not in caplog.text


def test_wait_for_db_backoff_is_capped(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test.db.cap")
    stop = threading.Event()

    class StopAfter(logging.Handler):
        seen = 0

        def emit(self, record: logging.LogRecord) -> None:
            self.seen += 1
            if self.seen >= 4:
                stop.set()

    handler = StopAfter()
    log.addHandler(handler)
    try:
        with caplog.at_level(logging.WARNING, logger=log.name), pytest.raises(DatabaseUnavailable):
            wait_for_db(_refused_mysql_url("pw"), backoff_max=0.2, stop=stop, log=log)
    finally:
        log.removeHandler(handler)
    delays = [re.search(r"retrying in ([\d.]+) s", r.getMessage()).group(1) for r in caplog.records]
    assert delays[:4] == ["0.2", "0.2", "0.2", "0.2"]


def test_wait_for_db_stop_already_set(caplog: pytest.LogCaptureFixture) -> None:
    stop = threading.Event()
    stop.set()
    with pytest.raises(DatabaseUnavailable, match=r"skyline:\*\*\*@"):
        wait_for_db(_refused_mysql_url("pw"), stop=stop, log=logging.getLogger("test.db"))
    assert not caplog.records


def test_wait_for_db_sqlite(sqlite_url: str, caplog: pytest.LogCaptureFixture) -> None:
    engine = wait_for_db(sqlite_url, log=logging.getLogger("test.db"))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1
    engine.dispose()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
