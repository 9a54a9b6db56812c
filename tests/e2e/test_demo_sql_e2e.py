"""End to end: the demo's pulled source.  The demo writes its orders table (with the
collapse of region eu injected), the running vista daemon pulls it with the embedded
defaults' source (only its interval shortened), the running analyzer judges the
labelled metric and the anomaly event carries its labels."""

from __future__ import annotations

import random
import time

from skyline.analysis.analyzer.agent import Analyzer
from skyline.cli import demo_sql
from skyline.events.anomaly import read_all
from skyline.ingest.vista.agent import Vista
from skyline.settings.doc import toml_value
from skyline.settings.vista import DEMO_SOURCE
from tests.conftest import wait_for
from tests.integration.pipeline_fixtures import pipeline_settings, running

EU = "demo.orders_per_minute.region=eu"


def test_demo_orders_collapse_is_detected_with_its_labels(make_settings, tmp_path) -> None:
    source = {**DEMO_SOURCE, "interval": 0.5}
    conf = '[analyzer]\nmode = "default"\n\n[[vista]]\n' + "".join(
        f"{k} = {toml_value(v)}\n" for k, v in source.items()
    )
    settings = pipeline_settings(make_settings, tmp_path, conf, **{
        "SKYLINE__ANALYZER__ARRIVAL_INTERVAL": "0.05", "SKYLINE__ANALYZER__INTERVAL": "3600",
    })  # fmt: skip
    settings.var_path.mkdir(parents=True, exist_ok=True)
    now = time.time()
    # the collapse starts 10 minutes ago and lasts ANOMALY_MINUTES
    demo = demo_sql.DemoOrders(settings, backfill_hours=6, first_anomaly=-600,
                               rng=random.Random(11))  # fmt: skip
    with (
        running(Analyzer(settings), ready="sweep_todo") as analyzer,
        running(Vista(settings), ready="pool") as vista,
    ):
        demo.write(now)
        wait_for(lambda: len(vista.store.read(EU)) >= 6 * 60 - 1, timeout=60)
        collapse = int(now - 600) // 60 * 60
        end = collapse + demo_sql.ANOMALY_MINUTES * 60

        def in_collapse() -> list:
            return [e for e in read_all(analyzer.redis, analyzer.keys)
                    if e.metric == EU and collapse <= e.timestamp < end]  # fmt: skip

        events = wait_for(in_collapse, timeout=90)
    assert events[0].labels == {"__name__": "orders_per_minute", "region": "eu"}
