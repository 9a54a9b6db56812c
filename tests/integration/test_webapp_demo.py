"""The demo through the real pipeline: backfill, live points to horizon's line port,
the analyzer detects the injected spike, panorama stores it, the API lists it."""

from __future__ import annotations

import threading
from contextlib import ExitStack

from sqlalchemy import select
from sqlalchemy.orm import Session

from skyline.analysis.analyzer.agent import Analyzer
from skyline.cli.demo import Demo
from skyline.cli.demo_data import demo_metrics
from skyline.db import make_engine
from skyline.db.models import Anomaly, Metric
from skyline.events.panorama.agent import Panorama
from tests.conftest import wait_for
from tests.integration.horizon_fixtures import horizon_env, running_horizon
from tests.integration.pipeline_fixtures import pipeline_settings, running


def test_demo_metrics_are_realistic():
    import random

    rng = random.Random(1)
    kinds = {m.kind for m in demo_metrics()}
    assert kinds == {"seasonal", "counter", "flat", "gauge"}
    counter = next(m for m in demo_metrics() if m.kind == "counter")
    values = [counter.normal(t, rng, 60) for t in range(0, 3600, 60)]
    assert values == sorted(values) and values[-1] > values[0]
    seasonal = demo_metrics()[0]
    day = [seasonal.normal(t, rng, 60) for t in range(0, 86400, 600)]
    assert max(day) - min(day) > 2 * seasonal.amplitude * 0.8  # a daily cycle


def test_demo_anomaly_detected_and_stored(make_settings, tmp_path):
    settings = pipeline_settings(make_settings, tmp_path, "", **horizon_env(),
                                 SKYLINE__ANALYZER__ARRIVAL_INTERVAL="0.1",
                                 SKYLINE__ANALYZER__INTERVAL="3600",
                                 SKYLINE__PANORAMA__INTERVAL="0.2")  # fmt: skip
    with ExitStack() as stack:
        horizon = stack.enter_context(running_horizon(settings))
        stack.enter_context(running(Analyzer(settings), ready="options"))
        stack.enter_context(running(Panorama(settings)))
        port = horizon.listeners.ports["line_port"]
        live = settings.model_copy(
            update={"horizon": settings.horizon.model_copy(update={"line_port": port})}
        )
        said: list[str] = []
        demo = Demo(live, interval=1.0, backfill_hours=3, first_anomaly=3, every=3600, seed=7,
                    say=said.append)  # fmt: skip
        thread = threading.Thread(target=demo.run, args=(120,), daemon=True)
        thread.start()
        engine = make_engine(settings.database_url)

        def stored() -> list[str]:
            with Session(engine) as db:
                q = select(Metric.name).join(Anomaly, Anomaly.metric_id == Metric.id)
                return list(db.scalars(q))

        wait_for(lambda: "demo.shop.checkout.latency_ms" in stored(), timeout=105, interval=0.2)
        names = stored()
        demo.stop_event.set()
        thread.join(10)
    assert "demo.shop.checkout.latency_ms" in names, (names, said)
    # the story's first timeout, in the backfill: the analyzer judged the stored points
    assert any("a timeout into demo.shop.checkout.latency_ms and" in s and "in the backfill" in s
               for s in said), said  # fmt: skip
    flats = {m.name for m in demo_metrics() if m.kind == "flat"}
    assert not flats & set(names)
