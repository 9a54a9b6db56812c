"""vista's SQL source against real SQLite, PostgreSQL and MariaDB: incremental pulls,
late rows, no doubles, time zones, and every kind of failure bounded and reported."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from skyline.ingest.vista.sources import SourceError
from tests.integration import conftest_db
from tests.integration.vista_fixtures import Harness, vista_conf
from tests.peers import require

PG_URL = os.environ.get(
    "SKYLINE_TEST_PG_URL", "postgresql+pg8000://postgres@127.0.0.1:5432/postgres"
)
NOW = 1_800_000_000.0  # 2027-01-15 08:00 UTC
mysql_url = conftest_db.mysql_url  # a throwaway MariaDB database


def _reachable(url: str) -> bool:
    try:
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:  # noqa: BLE001 - any failure means the peer is not usable
        return False


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    """The URL of a throwaway database on the machine's PostgreSQL, dropped afterwards:
    the tests touch no database they did not create."""
    if not _reachable(PG_URL):
        require("postgresql", f"no PostgreSQL at {PG_URL} (set SKYLINE_TEST_PG_URL)")
    name = f"skyline_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))  # a generated identifier
    try:
        yield sa.engine.make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(SQLAlchemy URL, table) of a fresh table ``(ts, name, value)`` with naive UTC times."""
    kind = request.param
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'shop.db'}"
    elif kind == "postgresql":
        url = request.getfixturevalue("pg_database")
    else:
        url = request.getfixturevalue("mysql_url")
    table = f"vista_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    sa.Table(table, meta, sa.Column("ts", sa.DateTime), sa.Column("name", sa.String(100)),
             sa.Column("value", sa.Float))  # fmt: skip
    meta.create_all(engine)
    try:
        yield url, table
    finally:
        meta.drop_all(engine)
        engine.dispose()


def insert(url: str, table: str, rows: list[tuple[float, str, float]]) -> None:
    engine = sa.create_engine(url)
    t = sa.Table(table, sa.MetaData(), autoload_with=engine)
    with engine.begin() as conn:
        conn.execute(t.insert(), [
            {"ts": dt.datetime.fromtimestamp(ts, dt.UTC).replace(tzinfo=None), "name": n, "value": v}
            for ts, n, v in rows
        ])  # fmt: skip
    engine.dispose()


def source(url: str, table: str, **extra: object) -> dict[str, object]:
    return {
        "name": "shop",
        "kind": "sql",
        "url": url,
        "query": f"SELECT ts, name, value FROM {table} WHERE ts > :start AND ts <= :end",
        "namespace": "shop",
        "interval": 60.0,
        **extra,
    }


def test_incremental_no_doubles_late_rows(db, make_settings, tmp_path: Path) -> None:
    url, table = db
    conf = vista_conf(tmp_path / "s.conf", source(url, table, lookback=600, backfill_days=0.1))
    h = Harness(make_settings(conf))
    insert(url, table, [(NOW - 600 + 60 * i, "orders", float(i)) for i in range(10)])
    insert(url, table, [(NOW - 300, "signups", 5.0)])
    r = h.pull("shop", NOW)
    assert r.metrics == 2 and r.delivered.live == 11
    assert h.series("shop.orders") == [(int(NOW - 600 + 60 * i), float(i)) for i in range(10)]
    # nothing new: nothing stored, though the window overlaps by the lookback
    r = h.pull("shop", NOW + 60)
    assert r.new == 0 and h.raw_count("shop.orders") == 10
    # a new row and a late row (older than the cursor, within the lookback)
    insert(url, table, [(NOW + 90, "orders", 10.0), (NOW - 90, "orders", 99.0)])
    r = h.pull("shop", NOW + 120)
    assert r.new == 2
    assert h.raw_count("shop.orders") == 12
    got = dict(h.series("shop.orders"))
    assert got[int(NOW + 90)] == 10.0 and got[int(NOW - 90)] == 99.0
    h.close()


def test_outage_then_catch_up(db, make_settings, tmp_path: Path) -> None:
    url, table = db
    conf = vista_conf(tmp_path / "s.conf", source(url, table))
    h = Harness(make_settings(conf))
    insert(url, table, [(NOW - 30, "orders", 1.0)])
    h.pull("shop", NOW)
    # the source is away for 10 minutes: pulls fail, rows keep arriving in the table
    broken = h.settings.vista[0].model_copy(
        update={"url": "postgresql+pg8000://nobody@127.0.0.1:1/x"}
    )
    from skyline.ingest.vista.sources import build

    down = build(broken)
    from skyline.ingest.vista.pull import pull

    with pytest.raises(SourceError):
        pull(down, h.store, h.redis, h.settings, NOW + 300)
    down.close()
    insert(url, table, [(NOW + 60 * i, "orders", float(i)) for i in range(1, 11)])
    r = h.pull("shop", NOW + 660)
    assert r.new == 10
    ts = [t for t, _ in h.series("shop.orders")]
    assert ts == [int(NOW - 30)] + [int(NOW + 60 * i) for i in range(1, 11)]
    assert h.raw_count("shop.orders") == 11
    h.close()


def test_time_zone_is_explicit(db, make_settings, tmp_path: Path) -> None:
    url, table = db
    # the table holds naive local times of New York; the option says so
    conf = vista_conf(
        tmp_path / "s.conf", source(url, table, options={"timezone": "America/New_York"})
    )
    h = Harness(make_settings(conf))
    local = dt.datetime.fromtimestamp(NOW - 30, dt.UTC).astimezone(
        __import__("zoneinfo").ZoneInfo("America/New_York")
    )
    engine = sa.create_engine(url)
    t = sa.Table(table, sa.MetaData(), autoload_with=engine)
    with engine.begin() as conn:
        conn.execute(t.insert(), [{"ts": local.replace(tzinfo=None), "name": "tz", "value": 1.0}])
    engine.dispose()
    h.pull("shop", NOW)
    assert h.series("shop.tz") == [(int(NOW - 30), 1.0)]
    h.close()


def test_failures_are_bounded_and_named(db, make_settings, tmp_path: Path) -> None:
    url, table = db
    hang = {
        "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
        "SELECT max(x) AS ts, 1 AS value FROM c",
        "postgresql": "SELECT pg_sleep(30) AS ts, 1 AS value",
        "mariadb": "SELECT SLEEP(30) AS ts, 1 AS value",
    }[sa.make_url(url).get_backend_name() if "mysql" not in url else "mariadb"]
    conf = vista_conf(
        tmp_path / "s.conf",
        source(url, table, name="huge", max_points=5),
        source(url, table, name="bad", query=f"SELECT ts, name FROM {table}"),
        source(url, table, name="err", query="SELECT ts, value FROM no_such_table"),
        source(url, table, name="hang", query=hang, timeout=1.0),
    )
    h = Harness(make_settings(conf))
    insert(url, table, [(NOW - 500 + i, "orders", float(i)) for i in range(20)])
    expected = {"huge": "too_large", "bad": "malformed", "err": "query", "hang": "timeout"}
    for name, reason in expected.items():
        with pytest.raises(SourceError) as exc:
            h.pull(name, NOW, since=NOW - 1000)
        assert exc.value.reason == reason, (name, str(exc.value))
    assert h.store.metrics() == []
    h.close()
