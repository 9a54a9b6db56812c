"""Labelled metrics in SQL: vista's SQL label columns on real SQLite, PostgreSQL and
MariaDB, and the label sets written to the metric_labels table by panorama (the
migration on SQLite and MariaDB, the databases Skyline itself runs on)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from skyline.db import make_engine, migrate
from skyline.db.models import Metric, MetricLabel
from skyline.events.panorama import labels as panorama_labels
from skyline.events.panorama.agent import Panorama
from skyline.ingest.vista.sources import SourceError
from skyline.settings.selector import parse
from skyline.store.labels import LabelIndex
from tests.conftest import wait_for
from tests.integration import conftest_db
from tests.integration.pipeline_fixtures import pipeline_settings, running
from tests.integration.test_vista_sql import NOW, pg_database  # noqa: F401
from tests.integration.vista_fixtures import Harness, vista_conf

mysql_url = conftest_db.mysql_url
db_url = conftest_db.db_url


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh empty database of each kind (SQLite file, throwaway PG / MariaDB database)."""
    if request.param == "sqlite":
        (tmp_path / "db").mkdir()
        return f"sqlite:///{tmp_path / 'db' / 'skyline.db'}"
    if request.param == "postgresql":
        return request.getfixturevalue("pg_database")
    return request.getfixturevalue("mysql_url")


@pytest.fixture
def orders(sql_url: str) -> Iterator[tuple[str, str]]:
    """(URL, table) of ``(ts, name, region, code, value)`` rows, naive UTC times."""
    table = f"labels_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(sql_url)
    meta = sa.MetaData()
    sa.Table(table, meta, sa.Column("ts", sa.DateTime), sa.Column("name", sa.String(50)),
             sa.Column("region", sa.String(50)), sa.Column("code", sa.String(10), nullable=True),
             sa.Column("value", sa.Float))  # fmt: skip
    meta.create_all(engine)
    try:
        yield sql_url, table
    finally:
        meta.drop_all(engine)
        engine.dispose()


def insert(url: str, table: str, rows: list[tuple[float, str, str, str | None, float]]) -> None:
    engine = sa.create_engine(url)
    t = sa.Table(table, sa.MetaData(), autoload_with=engine)
    with engine.begin() as conn:
        conn.execute(t.insert(), [
            {"ts": dt.datetime.fromtimestamp(ts, dt.UTC).replace(tzinfo=None), "name": n,
             "region": r, "code": c, "value": v}
            for ts, n, r, c, v in rows
        ])  # fmt: skip
    engine.dispose()


def sql_source(url: str, table: str, **options: object) -> dict[str, object]:
    return {
        "name": "shop", "kind": "sql", "url": url, "namespace": "shop",
        "query": f"SELECT ts, name, region, code, value FROM {table} "
                 "WHERE ts > :start AND ts <= :end",
        "backfill_days": 0.1, "options": {"label_columns": ["region", "code"], **options},
    }  # fmt: skip


def test_sql_label_columns_make_labelled_metrics(orders, make_settings, tmp_path: Path) -> None:
    url, table = orders
    h = Harness(make_settings(vista_conf(tmp_path / "s.conf", sql_source(url, table))))
    insert(url, table, [
        (NOW - 120, "orders", "eu-west.1", "200", 5.0),
        (NOW - 60, "orders", "eu-west.1", "200", 6.0),
        (NOW - 60, "orders", "us", "500", 1.0),
        (NOW - 60, "orders", "us", None, 2.0),  # NULL: the label is left out
    ])  # fmt: skip
    r = h.pull("shop", NOW)
    assert r.metrics == 3 and r.delivered.live == 4
    eu = "shop.orders.code=200.region=eu-west_1"
    assert h.series(eu) == [(int(NOW - 120), 5.0), (int(NOW - 60), 6.0)]
    assert sorted(h.store.metrics()) == [
        eu,
        "shop.orders.code=500.region=us",
        "shop.orders.region=us",
    ]
    index = LabelIndex(h.redis, h.keys)
    assert index.get(eu) == {"__name__": "orders", "code": "200", "region": "eu-west.1"}
    names = h.store.metrics()
    assert index.select(parse('orders{region="eu-west.1"}'), names) == [eu]
    assert index.select(parse('{code=~"5.."}'), names) == ["shop.orders.code=500.region=us"]
    assert index.select(parse('{region="us",code=""}'), names) == ["shop.orders.region=us"]
    h.close()


def test_a_label_column_the_query_does_not_return_is_malformed(orders, make_settings, tmp_path):
    url, table = orders
    src = sql_source(url, table, label_columns=["region", "country"])
    h = Harness(make_settings(vista_conf(tmp_path / "s.conf", src)))
    insert(url, table, [(NOW - 60, "orders", "eu", "200", 5.0)])
    with pytest.raises(SourceError) as err:
        h.pull("shop", NOW)
    assert err.value.reason == "malformed" and "country" in str(err.value)
    assert h.store.metrics() == []
    h.close()


def test_panorama_writes_label_sets_to_sql(db_url: str, redis_client, make_settings, tmp_path):
    """The migration creates metric_labels on SQLite and MariaDB (Skyline's own
    databases); label sets popped from labels:new are written once, with values as
    sent (unicode, long, odd characters)."""
    sql_url = db_url
    migrate.upgrade(sql_url)
    settings = make_settings(SKYLINE__DATABASE__URL=sql_url)
    from skyline.store.keys import RedisKeys

    index = LabelIndex(redis_client, RedisKeys(settings.redis.prefix))
    long_value = "v" * 600  # over the column's 512: kept truncated
    index.register({
        "http.code=500.job=api": {"__name__": "http", "code": "500", "job": "api"},
        "odd.city=Z_rich": {"__name__": "odd", "city": "Zürich 🚀 \"quoted\" ,;"},
        "long.l=x": {"__name__": "long", "l": long_value},
        # two names over the column's 128 characters, the same once cut: the first kept
        "cut.names": {"__name__": "cut", "n" * 128 + "a": "1", "n" * 128 + "b": "2"},
    })  # fmt: skip
    engine = make_engine(sql_url)
    assert panorama_labels.sync(engine, index) == 4
    assert panorama_labels.sync(engine, index) == 0  # popped: nothing left
    with Session(engine) as db:
        rows = db.execute(
            sa.select(Metric.name, MetricLabel.name, MetricLabel.value)
            .join(MetricLabel, MetricLabel.metric_id == Metric.id)
            .order_by(Metric.name, MetricLabel.name)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("cut.names", "__name__", "cut"),
        ("cut.names", "n" * 128, "1"),
        ("http.code=500.job=api", "__name__", "http"),
        ("http.code=500.job=api", "code", "500"),
        ("http.code=500.job=api", "job", "api"),
        ("long.l=x", "__name__", "long"),
        ("long.l=x", "l", long_value[:512]),
        ("odd.city=Z_rich", "__name__", "odd"),
        ("odd.city=Z_rich", "city", 'Zürich 🚀 "quoted" ,;'),
    ]
    # the same metric registered again by another process: no second row
    redis_client.sadd(index.keys.labels_new(), "http.code=500.job=api")
    assert panorama_labels.sync(engine, index) == 1
    with Session(engine) as db:
        assert db.scalar(sa.select(sa.func.count()).select_from(MetricLabel)) == 9
    engine.dispose()


def test_a_label_set_is_given_back_while_sql_is_down(redis_client, make_settings, tmp_path):
    settings = make_settings()
    from skyline.store.keys import RedisKeys

    index = LabelIndex(redis_client, RedisKeys(settings.redis.prefix))
    index.register({"a.k=v": {"__name__": "a", "k": "v"}})
    down = make_engine(f"sqlite:///{tmp_path / 'missing' / 'no.db'}")  # directory absent
    with pytest.raises(sa.exc.OperationalError):
        panorama_labels.sync(down, index)
    assert redis_client.smembers(index.keys.labels_new()) == {b"a.k=v"}


def test_the_panorama_daemon_syncs_label_sets(make_settings, tmp_path, redis_client):
    settings = pipeline_settings(make_settings, tmp_path, "", SKYLINE__PANORAMA__INTERVAL="0.2")
    with running(Panorama(settings)) as p:
        LabelIndex(redis_client, p.keys).register({"up.job=api": {"__name__": "up", "job": "api"}})
        engine = make_engine(settings.database_url)

        def stored() -> list[tuple[str, str]]:
            with Session(engine) as db:
                return [tuple(r) for r in db.execute(
                    sa.select(MetricLabel.name, MetricLabel.value).order_by(MetricLabel.name))]  # fmt: skip

        assert wait_for(stored, timeout=20) == [("__name__", "up"), ("job", "api")]
        assert wait_for(lambda: p.counters.peek().get("label_sets_stored")) == 1
