"""The demo's pulled source: the embedded defaults' [[vista]] source ``demo-orders``
pulls the SQLite table ``skyline demo`` fills (real SQLite file, real Redis), with the
region as a label and the injected collapse of region eu's orders."""

from __future__ import annotations

import random
import sqlite3
import threading
import time

import numpy as np

from skyline.cli import demo_sql
from skyline.store.labels import LabelIndex
from tests.conftest import wait_for
from tests.integration.vista_fixtures import Harness

EU = "demo.orders_per_minute.region=eu"
US = "demo.orders_per_minute.region=us"


def test_the_default_source_waits_for_the_demo_then_pulls_its_table(make_settings) -> None:
    settings = make_settings()
    (cfg,) = settings.vista  # the embedded defaults' one source
    assert cfg.name == demo_sql.SOURCE_NAME and cfg.kind == "sql"
    assert cfg.url == f"sqlite:///{settings.var_path / demo_sql.DB_FILE}"
    settings.var_path.mkdir(parents=True, exist_ok=True)
    h = Harness(settings)
    now = float(int(time.time()) // 60 * 60 + 30)
    # before the demo runs: no table, no rows, no error
    r = h.pull(cfg.name, now - 3600)
    assert r.fetched == 0 and h.store.metrics() == []
    # the demo writes 6 h of history with the collapse 5 minutes after its start...
    demo = demo_sql.DemoOrders(settings, backfill_hours=6, first_anomaly=-1800,
                               rng=random.Random(7))  # fmt: skip
    n = demo.write(now)
    assert n == 2 * 6 * 60
    # ...and resets the source's cursor, so the next pass loads that history
    r = h.pull(cfg.name, now)
    assert r.metrics == 2 and r.delivered.live == n
    assert sorted(h.store.metrics()) == [EU, US]
    index = LabelIndex(h.redis, h.keys)
    assert index.get(EU) == {"__name__": "orders_per_minute", "region": "eu"}
    eu = h.store.read(EU)
    collapsed = eu.timestamps >= now - 1800
    collapsed &= eu.timestamps < now - 1800 + demo_sql.ANOMALY_MINUTES * 60
    assert collapsed.sum() == demo_sql.ANOMALY_MINUTES
    normal = np.median(eu.values[~collapsed])
    assert normal > 60 and eu.values[collapsed].max() < 0.2 * normal
    assert np.median(h.store.read(US).values) > 40
    # the next minute: one row per region, pulled once
    assert demo.write(now + 60) == 2
    r = h.pull(cfg.name, now + 90)
    assert r.new == 2 and len(h.store.read(EU)) == 6 * 60 + 1
    h.close()


def test_the_demo_thread_fills_the_table_and_stops(make_settings) -> None:
    settings = make_settings()
    settings.var_path.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    said: list[str] = []
    thread = demo_sql.run(settings, stop, said.append, backfill_hours=1, interval=0.1)
    wait_for(lambda: said, timeout=10)
    assert "demo_orders" in said[0], said
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
    db = sqlite3.connect(settings.var_path / demo_sql.DB_FILE)
    (rows,) = db.execute("SELECT COUNT(*) FROM demo_orders").fetchone()
    db.close()
    assert rows >= 2 * 59
