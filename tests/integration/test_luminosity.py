"""Luminosity on real Redis streams, a real store and real SQL (SQLite and MariaDB),
beside panorama: related metrics stored for the anomaly's row, bad and repeated
entries acknowledged without blocking the stream."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from skyline.db import make_engine
from skyline.db.models import Anomaly, Correlation, Metric
from skyline.events import publish
from skyline.luminosity import agent
from skyline.luminosity.agent import Luminosity
from skyline.panorama.agent import Panorama
from tests.conftest import wait_for
from tests.integration import conftest_db
from tests.integration.pipeline_fixtures import anomaly, pipeline_settings, running

mysql_url = conftest_db.mysql_url
db_url = conftest_db.db_url

N = 60
STEP = 60


@pytest.fixture
def settings_for(make_settings, tmp_path):
    def make(url: str, **env: str):
        defaults = {"SKYLINE__DATABASE__URL": url, "SKYLINE__PANORAMA__INTERVAL": "0.2",
                    "SKYLINE__LUMINOSITY__INTERVAL": "0.2", "SKYLINE__LUMINOSITY__CLAIM_IDLE": "1",
                    "SKYLINE__LUMINOSITY__ROW_WAIT": "0.5"}  # fmt: skip
        return pipeline_settings(make_settings, tmp_path, "", **{**defaults, **env})

    return make


def seed_metrics(daemon: Luminosity) -> int:
    """web.latency spikes; web.errors moves with it, db.load one step before it,
    disk.free not at all.  Returns the time of the spike (the last point)."""
    now = int(time.time())
    t = [float(now - STEP * (N - 1 - k)) for k in range(N)]
    rng = np.random.default_rng(5)
    latency = rng.normal(100, 3, N + 1)
    latency[-7:-1] += [20, 45, 30, 60, 80, 200]
    series = {
        "web.latency": latency[:-1],
        "web.errors": 0.5 * latency[:-1] + rng.normal(0, 0.3, N),
        "db.load": latency[1:] + 7,  # the latency one step ahead: moved one step before
        "disk.free": rng.normal(500, 10, N),
    }
    daemon.store.append_grouped({m: (t, v.tolist()) for m, v in series.items()})
    return now


def correlations(settings) -> dict[str, tuple[int, float, int]]:
    with Session(make_engine(settings.database_url)) as db:
        rows = db.execute(
            select(Metric.name, Correlation.anomaly_id, Correlation.coefficient, Correlation.shifted)
            .join(Metric, Correlation.metric_id == Metric.id)
        ).all()  # fmt: skip
    return {name: (aid, coef, shifted) for name, aid, coef, shifted in rows}


def anomaly_row_id(settings, event_id: str) -> int:
    with Session(make_engine(settings.database_url)) as db:
        return db.scalar(select(Anomaly.id).where(Anomaly.event_id == event_id))


def test_the_metrics_that_moved_with_an_anomaly_are_stored_for_it(
    settings_for, db_url, redis_client
):
    settings = settings_for(db_url)
    with running(Panorama(settings)), running(Luminosity(settings)) as lum:
        ts = seed_metrics(lum)
        event = anomaly("web.latency", ts=ts, value=300.0)
        publish(redis_client, lum.keys, event, 1000)
        wait_for(lambda: lum.counters.peek().get("correlations") == 2)
        counters = lum.counters.peek()
        wait_for(lambda: redis_client.xpending(lum.keys.anomalies_stream(), "luminosity")["pending"] == 0)  # fmt: skip
    found = correlations(settings)
    assert set(found) == {"web.errors", "db.load"}
    row_id = anomaly_row_id(settings, event.id)
    assert {aid for aid, _, _ in found.values()} == {row_id}
    assert found["db.load"][1] > 0.9 and found["db.load"][2] == -STEP
    assert found["web.errors"][1] > 0.9 and found["web.errors"][2] == 0
    assert counters["anomalies"] == 1 and counters["metrics_compared"] == 3


def test_a_malformed_entry_is_acked_and_counted(settings_for, tmp_path, redis_client):
    settings = settings_for(f"sqlite:///{tmp_path / 'db' / 'skyline.db'}")
    with running(Panorama(settings)), running(Luminosity(settings)) as lum:
        ts = seed_metrics(lum)
        redis_client.xadd(lum.keys.anomalies_stream(), {"event": "not json"})
        publish(redis_client, lum.keys, anomaly("web.errors", ts=ts), 1000)
        wait_for(lambda: lum.counters.peek().get("anomalies") == 1)
        assert lum.counters.peek()["skipped.malformed"] == 1
        wait_for(lambda: redis_client.xpending(lum.keys.anomalies_stream(), "luminosity")["pending"] == 0)  # fmt: skip
    assert set(correlations(settings)) == {"web.latency", "db.load"}


def test_a_repeat_never_stored_does_not_block_the_stream(settings_for, tmp_path, redis_client):
    settings = settings_for(f"sqlite:///{tmp_path / 'db' / 'skyline.db'}")
    with running(Panorama(settings)), running(Luminosity(settings)) as lum:
        ts = seed_metrics(lum)
        first, repeat = anomaly("web.latency", ts=ts - 300), anomaly("web.latency", ts=ts - 240)
        later = anomaly("web.errors", ts=ts)
        for event in (first, repeat, later):
            publish(redis_client, lum.keys, event, 1000)
        wait_for(lambda: lum.counters.peek().get("anomalies") == 2)
        assert lum.counters.peek()["skipped.repeat"] == 1
        assert anomaly_row_id(settings, repeat.id) is None
    ids = {aid for aid, _, _ in correlations(settings).values()}
    assert anomaly_row_id(settings, later.id) in ids


def test_an_anomaly_whose_row_never_appears_is_dropped_after_max_tries(
    settings_for, tmp_path, redis_client
):
    settings = settings_for(f"sqlite:///{tmp_path / 'db' / 'skyline.db'}",
                            SKYLINE__LUMINOSITY__MAX_TRIES="2", SKYLINE__LUMINOSITY__ROW_WAIT="0.1")  # fmt: skip
    with running(Luminosity(settings)) as lum:  # no panorama: the row never appears
        publish(redis_client, lum.keys, anomaly("web.latency"), 1000)
        wait_for(lambda: lum.counters.peek().get("skipped.no_anomaly_row") == 1)
        assert lum.counters.peek()["waiting_for_row"] >= 1
        wait_for(lambda: redis_client.xpending(lum.keys.anomalies_stream(), "luminosity")["pending"] == 0)  # fmt: skip


def test_alerting_only_skips_anomalies_no_rule_matches(settings_for, tmp_path, redis_client):
    settings = settings_for(f"sqlite:///{tmp_path / 'db' / 'skyline.db'}",
                            SKYLINE__LUMINOSITY__ALERTING_ONLY="true")  # fmt: skip
    with running(Panorama(settings)), running(Luminosity(settings)) as lum:
        ts = seed_metrics(lum)
        publish(redis_client, lum.keys, anomaly("web.latency", ts=ts), 1000)
        wait_for(lambda: lum.counters.peek().get("skipped.not_alerting") == 1)
    assert correlations(settings) == {}


def test_an_anomaly_that_fails_to_correlate_is_dropped_not_retried_forever(
    settings_for, tmp_path, redis_client, monkeypatch
):
    settings = settings_for(f"sqlite:///{tmp_path / 'db' / 'skyline.db'}")
    real = agent.correlate_window
    calls = []

    def fail_once(*args, **kwargs):  # a mock only to force the failure
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("forced")
        return real(*args, **kwargs)

    monkeypatch.setattr(agent, "correlate_window", fail_once)
    with running(Panorama(settings)), running(Luminosity(settings)) as lum:
        ts = seed_metrics(lum)
        publish(redis_client, lum.keys, anomaly("web.latency", ts=ts - 600), 1000)
        publish(redis_client, lum.keys, anomaly("web.errors", ts=ts), 1000)
        wait_for(lambda: lum.counters.peek().get("anomalies") == 1)
        assert lum.counters.peek()["skipped.failed"] == 1
        wait_for(lambda: redis_client.xpending(lum.keys.anomalies_stream(), "luminosity")["pending"] == 0)  # fmt: skip
    assert set(correlations(settings)) == {"web.latency", "db.load"}
