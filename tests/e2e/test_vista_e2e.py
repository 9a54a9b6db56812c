"""End to end: a spike written into a SQL table is pulled by the running vista daemon,
judged by the running analyzer (the streaming detector), recorded by panorama and shown
on the webapp's Anomalies page -- no push path anywhere."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from skyline.analysis.analyzer.agent import Analyzer
from skyline.events.anomaly import read_all
from skyline.events.panorama.agent import Panorama
from skyline.ingest.vista.agent import Vista
from skyline.settings.doc import toml_value
from skyline.webapp.agent import Webapp
from tests.conftest import free_port, wait_for
from tests.integration.pipeline_fixtures import pipeline_settings, running
from tests.integration.test_webapp_http import ADMIN_PASSWORD, Browser


def test_spike_at_the_source_is_detected_and_shown(make_settings, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    engine = sa.create_engine(url)
    now = int(time.time()) // 60 * 60
    rng = np.random.default_rng(7)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE orders (ts INTEGER, value REAL)"))
        conn.execute(sa.text("INSERT INTO orders VALUES (:t, :v)"), [
            {"t": now - 60 * i, "v": float(100 + rng.normal(0, 2))} for i in range(1, 400)
        ])  # fmt: skip
    source = {"name": "shop", "kind": "sql", "url": url, "interval": 0.5, "namespace": "shop",
              "query": "SELECT ts, value, 'orders' AS name FROM orders WHERE ts > :start AND ts <= :end",
              "options": {"time_type": "epoch"}, "backfill_days": 0.3, "lookback": 300}  # fmt: skip
    conf = '[analyzer]\nmode = "default"\n\n[[vista]]\n' + "".join(
        f"{k} = {toml_value(v)}\n" for k, v in source.items()
    )
    settings = pipeline_settings(make_settings, tmp_path, conf, **{
        "SKYLINE__ANALYZER__ARRIVAL_INTERVAL": "0.05", "SKYLINE__ANALYZER__INTERVAL": "3600",
        "SKYLINE__WEBAPP__HTTP_SERVER": "threaded", "SKYLINE__WEBAPP__PORT": str(free_port()),
        "SKYLINE__WEBAPP__ADMIN_PASSWORD": ADMIN_PASSWORD,
    })  # fmt: skip
    metric = "shop.orders"
    with (
        running(Analyzer(settings), ready="sweep_todo") as analyzer,
        running(Vista(settings), ready="pool") as vista,
        running(Panorama(settings)),
        running(Webapp(settings), ready="http") as web,
    ):
        wait_for(lambda: len(vista.store.read(metric)) == 399, timeout=30)
        with engine.begin() as conn:  # the anomaly, injected at the source
            conn.execute(sa.text("INSERT INTO orders VALUES (:t, :v)"), {"t": now, "v": 900.0})
        events = wait_for(lambda: [e for e in read_all(analyzer.redis, analyzer.keys)
                                   if e.metric == metric], timeout=60)  # fmt: skip
        assert events[0].timestamp == now and events[0].value == 900.0
        b = Browser(f"http://127.0.0.1:{web.port}")
        assert b.login().status_code == 302
        page = wait_for(lambda: (t := b.get(b.url("/anomalies")).text) and metric in t and t,
                        timeout=30)  # fmt: skip
        assert metric in page
    engine.dispose()
