"""Panorama on real Redis streams and real SQL: every anomaly and verdict stored once,
repeats counted, and nothing lost while SQL is down."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from skyline.db import make_engine, migrate
from skyline.db.models import Anomaly, AnomalyVerdict, FeaturesProfile
from skyline.events.anomaly import VerdictEvent, publish, publish_verdict
from skyline.events.panorama.agent import Panorama
from tests.conftest import free_port, wait_for
from tests.integration import conftest_db
from tests.integration.pipeline_fixtures import anomaly, pipeline_settings, running

mysql_url = conftest_db.mysql_url


def count(settings, model=Anomaly) -> int:
    with Session(make_engine(settings.database_url)) as db:
        return db.scalar(select(func.count()).select_from(model))


@pytest.fixture
def settings(make_settings, tmp_path):
    return pipeline_settings(make_settings, tmp_path, "", SKYLINE__PANORAMA__INTERVAL="0.2",
                             SKYLINE__PANORAMA__CLAIM_IDLE="1")  # fmt: skip


def test_anomalies_and_their_verdict_trail_are_stored(settings, redis_client):
    with running(Panorama(settings)) as p:
        event = anomaly("db.load", value=42.5)
        publish(redis_client, p.keys, event, 1000)
        for stage, verdict in (("analyzer", "sent_to_alerters"), ("alerters", "alerted")):
            publish_verdict(redis_client, p.keys, VerdictEvent(event.id, event.metric, event.timestamp,
                                                               stage, verdict, "why"), 1000)  # fmt: skip
        wait_for(lambda: count(settings, AnomalyVerdict) == 2)
    with Session(make_engine(settings.database_url)) as db:
        row = db.scalars(select(Anomaly)).one()
        assert (row.metric.name, row.value, row.timestamp, row.source) == (
            "db.load",
            42.5,
            event.timestamp,
            "analyzer",
        )
        assert row.triggered_algorithms == list(event.triggered) and row.scores == event.scores
        assert row.event_id == event.id and row.verdict == "alerted"
        assert [(v.stage, v.verdict) for v in row.verdicts] == [("analyzer", "sent_to_alerters"),
                                                               ("alerters", "alerted")]  # fmt: skip
    assert redis_client.xpending(p.keys.anomalies_stream(), "panorama")["pending"] == 0


def test_the_same_event_twice_is_stored_once(settings, redis_client):
    with running(Panorama(settings)) as p:
        event = anomaly()
        publish(redis_client, p.keys, event, 1000)
        publish(redis_client, p.keys, event, 1000)
        wait_for(lambda: p.counters.peek().get("duplicates") == 1)
    assert count(settings) == 1


def test_repeats_within_expiry_are_counted_not_stored(settings, redis_client):
    t = int(time.time())
    with running(Panorama(settings)) as p:
        first, repeat, later = anomaly(ts=t), anomaly(ts=t + 60), anomaly(ts=t + 1000)
        for e in (first, repeat, later):
            publish(redis_client, p.keys, e, 1000)
        publish_verdict(redis_client, p.keys, VerdictEvent(repeat.id, repeat.metric, repeat.timestamp,
                                                           "alerters", "suppressed"), 1000)  # fmt: skip
        wait_for(lambda: p.counters.peek().get("verdicts_of_repeats") == 1)
        assert p.counters.peek()["repeats"] == 1
    assert count(settings) == 2


def test_after_training_the_next_detection_is_stored_not_counted_as_a_repeat(
    settings, redis_client
):
    """The operator trained the last anomaly as normal: the next one, within the expiry,
    is stored, so its verdict (silenced by the new profile, or not) can be seen."""
    t = int(time.time())
    with running(Panorama(settings)) as p:
        first = anomaly(ts=t)
        publish(redis_client, p.keys, first, 1000)
        wait_for(lambda: count(settings) == 1)
        engine = make_engine(settings.database_url)
        with Session(engine) as db:
            row = db.scalars(select(Anomaly)).one()
            db.add(FeaturesProfile(metric_id=row.metric_id, anomaly_id=row.id, anomaly_timestamp=t,
                                   full_duration=86400, resolution=60, tsfresh_version="test",
                                   calc_time=0.1, features_count=1, features_sum=1.0))  # fmt: skip
            db.commit()
        after, again = anomaly(ts=t + 60), anomaly(ts=t + 120)
        publish(redis_client, p.keys, after, 1000)
        wait_for(lambda: count(settings) == 2)
        publish(redis_client, p.keys, again, 1000)  # nothing trained from `after`: a repeat
        wait_for(lambda: p.counters.peek().get("repeats") == 1)
        with Session(engine) as db:  # a deleted profile does not count as trained
            db.query(FeaturesProfile).update({"deleted": True, "anomaly_id": None})
            db.commit()
    assert count(settings) == 2


def test_malformed_entries_are_dropped_and_good_ones_kept(settings, redis_client):
    with running(Panorama(settings)) as p:
        redis_client.xadd(p.keys.anomalies_stream(), {"event": "not json"})
        redis_client.xadd(p.keys.verdicts_stream(), {"verdict": '{"no": "fields"}'})
        publish(redis_client, p.keys, anomaly(), 1000)
        wait_for(lambda: count(settings) == 1)
        wait_for(lambda: p.counters.peek().get("malformed_entries") == 2)


@pytest.mark.mysql
def test_nothing_is_lost_while_sql_is_down(make_settings, tmp_path, mysql_url, redis_client):
    """MariaDB behind a TCP forwarder the test stops (SQL down) and starts again."""
    migrate.upgrade(mysql_url)
    target = make_url(mysql_url)
    port = free_port()
    via_forwarder = target.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
    forwarder = conftest_db.TcpForwarder(port, (target.host or "127.0.0.1", target.port or 3306))
    forwarder.start()
    settings = make_settings(SKYLINE__DATABASE__URL=via_forwarder, SKYLINE__PANORAMA__INTERVAL="0.2",
                             SKYLINE__SKYLINE__RETRY_BACKOFF_MAX="0.5")  # fmt: skip
    t = int(time.time())
    direct = make_engine(mysql_url)

    def stored() -> int:
        with Session(direct) as db:
            return db.scalar(select(func.count()).select_from(Anomaly))

    with running(Panorama(settings)) as p:
        for k in range(5):
            publish(redis_client, p.keys, anomaly(f"m.{k}", ts=t), 1000)
        wait_for(lambda: stored() == 5)
        forwarder.stop()  # SQL goes away
        for k in range(5, 10):
            publish(redis_client, p.keys, anomaly(f"m.{k}", ts=t), 1000)
        wait_for(lambda: p.counters.peek().get("outages", 0) >= 1, timeout=20)
        assert stored() == 5
        forwarder = conftest_db.TcpForwarder(
            port, (target.host or "127.0.0.1", target.port or 3306)
        )
        forwarder.start()  # SQL is back
        wait_for(lambda: stored() == 10, timeout=30)
        wait_for(
            lambda: redis_client.xpending(p.keys.anomalies_stream(), "panorama")["pending"] == 0
        )
    forwarder.stop()
    direct.dispose()


# Issue 15 item 7: data the database refuses is dead-lettered, not taken for an outage.
REFUSED_METRIC_NAMES = ["café.latency", "naïve", "метрика", "☃"]  # the metrics column is ASCII


@pytest.mark.mysql
def test_data_the_database_refuses_is_dead_lettered(make_settings, mysql_url, redis_client):
    migrate.upgrade(mysql_url)
    settings = make_settings(SKYLINE__DATABASE__URL=mysql_url, SKYLINE__PANORAMA__INTERVAL="0.2",
                             SKYLINE__PANORAMA__CLAIM_IDLE="1")  # fmt: skip
    t = int(time.time())
    with running(Panorama(settings)) as p:
        publish(redis_client, p.keys, anomaly("good.before", ts=t), 1000)
        for name in REFUSED_METRIC_NAMES:
            publish(redis_client, p.keys, anomaly(name, ts=t), 1000)
        publish(redis_client, p.keys, anomaly("good.after", ts=t), 1000)
        wait_for(lambda: count(settings) == 2)
        wait_for(lambda: p.counters.peek().get("dead_letters") == len(REFUSED_METRIC_NAMES))
        wait_for(
            lambda: redis_client.xpending(p.keys.anomalies_stream(), "panorama")["pending"] == 0
        )
        assert p.counters.peek().get("outages", 0) == 0
