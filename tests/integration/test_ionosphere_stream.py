"""The ionosphere daemon on real Redis and SQL (SQLite and MariaDB) when things go
wrong: a failure recording a check still alerts and never blocks the stream; an entry
that keeps failing is dead-lettered after max_deliveries; a redelivered event is not
counted twice; an entry the parser cannot read is acknowledged and counted, even
when the parse raises something unexpected; windows come from the raw store up to [skyline] full_duration (a
short raw window, never the 600 s history) and from the history beyond, compared
only with profiles of its resolution; ionosphere:metrics is reconciled periodically;
no window is kept while learning is off, and maintenance prunes learning rows.
A mock is used only to force a failure."""

from __future__ import annotations

import dataclasses
import json
import time

import numpy as np
import pytest
import sqlalchemy.exc
from sqlalchemy import select
from sqlalchemy.orm import Session

from skyline.analysis.ionosphere.agent import Ionosphere
from skyline.analysis.ionosphere.learn import store_history
from skyline.analysis.ionosphere.profiles import create_profile, training_window
from skyline.analysis.ionosphere.window import history_window
from skyline.db import make_engine
from skyline.db.models import Anomaly, FeaturesProfile, LearnEvaluated, LearnWindow
from skyline.db.repo import get_or_create_metric
from skyline.events.anomaly import AnomalyEvent, publish
from tests.conftest import wait_for
from tests.integration import conftest_db
from tests.integration.pipeline_fixtures import anomaly, pipeline_settings, running
from tests.integration.test_ionosphere import (
    DAY,
    RULES,
    T_START,
    alerts,
    daily_pattern,
    seed,
    verdicts,
)

db_url = conftest_db.db_url
mysql_url = conftest_db.mysql_url
BUMP = T_START + DAY + 6 * 3600


@pytest.fixture
def settings(make_settings, tmp_path, db_url):
    return pipeline_settings(make_settings, tmp_path, RULES, SKYLINE__DATABASE__URL=db_url,
                             SKYLINE__IONOSPHERE__INTERVAL="0.2",
                             SKYLINE__IONOSPHERE__MAX_DELIVERIES="3",
                             SKYLINE__IONOSPHERE__MAINTENANCE_INTERVAL="1",
                             SKYLINE__IONOSPHERE__LEARN_LOOKBACK=str(10_000 * DAY))  # fmt: skip


def trained(d: Ionosphere, redis_client, settings, metric: str, seed_no: int = 0) -> int:
    t, v = daily_pattern(seed=seed_no)
    seed(d, metric, t, v)
    engine = make_engine(settings.database_url)
    pid = create_profile(engine, redis_client, d.keys, settings, metric=metric,
                         series=training_window(d.store, metric, BUMP, DAY),
                         anomaly_timestamp=BUMP, full_duration=DAY)  # fmt: skip
    engine.dispose()
    return pid


def send(d: Ionosphere, redis_client, event) -> None:
    publish(redis_client, d.keys, event, 1000, stream=d.keys.ionosphere_stream())


def pending(redis_client, d: Ionosphere) -> int:
    return redis_client.xpending(d.keys.ionosphere_stream(), "ionosphere")["pending"]


def test_an_error_recording_a_match_alerts_and_the_stream_goes_on(settings, redis_client,
                                                                 monkeypatch):  # fmt: skip
    with running(Ionosphere(settings)) as d:
        trained(d, redis_client, settings, "web.rec")
        wait_for(lambda: hasattr(d, "cache"))

        def too_long(*args, **kwargs):  # what MariaDB says of a too-long value
            raise sqlalchemy.exc.DataError("INSERT", {}, Exception("Data too long for column"))

        monkeypatch.setattr(d, "_store_match", too_long)
        first = anomaly("web.rec", ts=BUMP + DAY)
        send(d, redis_client, first)
        wait_for(lambda: alerts(redis_client, d.keys))
        assert [a.id for a in alerts(redis_client, d.keys)] == [first.id]
        assert "could not record" in verdicts(redis_client, d.keys)[-1]["reason"]
        monkeypatch.undo()
        second = anomaly("web.rec", ts=BUMP + DAY + 60)
        send(d, redis_client, second)
        wait_for(lambda: any(v["event_id"] == second.id for v in verdicts(redis_client, d.keys)))
        assert verdicts(redis_client, d.keys)[-1]["verdict"] == "not_anomalous"
        assert d.counters.peek()["errors.record"] == 1
        wait_for(lambda: pending(redis_client, d) == 0)


def test_an_entry_that_keeps_failing_is_dead_lettered(settings, redis_client, monkeypatch):
    with running(Ionosphere(settings)) as d:
        trained(d, redis_client, settings, "web.dead")
        wait_for(lambda: hasattr(d, "cache"))
        real_onward, calls = d._onward, []

        def broken_check(event):
            raise RuntimeError("a bug in the check")

        def onward(event, reason):  # sending on fails 3 times (every delivery), then works
            calls.append(reason)
            if len(calls) <= 3:
                raise RuntimeError("a bug in routing")
            real_onward(event, reason)

        monkeypatch.setattr(d, "check_event", broken_check)
        monkeypatch.setattr(d, "_onward", onward)
        bad = anomaly("web.dead", ts=BUMP + DAY)
        send(d, redis_client, bad)
        wait_for(lambda: alerts(redis_client, d.keys), timeout=20)
        assert [a.id for a in alerts(redis_client, d.keys)] == [bad.id]
        assert calls[-1] == "ionosphere failed on it 3 times" and len(calls) == 4
        assert d.counters.peek()["errors.dead_letter"] == 1
        wait_for(lambda: pending(redis_client, d) == 0)
        monkeypatch.undo()
        good = anomaly("web.dead", ts=BUMP + DAY + 60)
        send(d, redis_client, good)
        wait_for(lambda: any(v["event_id"] == good.id for v in verdicts(redis_client, d.keys)))
        assert verdicts(redis_client, d.keys)[-1]["verdict"] == "not_anomalous"


def test_a_redelivered_event_is_counted_once(settings, redis_client, monkeypatch):
    with running(Ionosphere(settings)) as d:
        pid = trained(d, redis_client, settings, "web.again")
        wait_for(lambda: hasattr(d, "consumer"))
        real_ack, acks = d.consumer.ack, []

        def ack(stream, *ids):  # the first acknowledgement is lost: the entry comes back
            acks.append(ids)
            if len(acks) == 1:
                raise RuntimeError("lost ack")
            real_ack(stream, *ids)

        monkeypatch.setattr(d.consumer, "ack", ack)
        event = anomaly("web.again", ts=BUMP + DAY)
        send(d, redis_client, event)
        wait_for(lambda: len(acks) >= 2 and pending(redis_client, d) == 0)
        assert {v["verdict"] for v in verdicts(redis_client, d.keys)} == {"not_anomalous"}
    engine = make_engine(settings.database_url)
    with Session(engine) as db:
        fp = db.get(FeaturesProfile, pid)
        assert (fp.checked_count, fp.matched_count) == (1, 1)
    engine.dispose()


def test_a_short_raw_window_is_used_not_the_rollup_history(settings, redis_client):
    """The store starts 5 minutes after the window's start (roomba trimmed it, or the
    event is late): the 24 h profile is compared with the slightly short raw window
    (and matches), not with the 600 s history (which never would)."""
    t, v = daily_pattern(seed=2)
    with running(Ionosphere(settings)) as d:
        seed(d, "web.short", t[t <= BUMP], v[t <= BUMP])
        engine = make_engine(settings.database_url)
        create_profile(engine, redis_client, d.keys, settings, metric="web.short",
                       series=training_window(d.store, "web.short", BUMP, DAY),
                       anomaly_timestamp=BUMP, full_duration=DAY)  # fmt: skip
        engine.dispose()
        d.store.delete("web.short")
        later = (t > BUMP + 300) & (t <= BUMP + DAY)
        seed(d, "web.short", t[later], v[later])
        send(d, redis_client, anomaly("web.short", ts=BUMP + DAY))
        wait_for(lambda: verdicts(redis_client, d.keys))
        assert verdicts(redis_client, d.keys)[0]["verdict"] == "not_anomalous"
        window = d.window("web.short", BUMP + DAY, DAY)
        assert window.resolution is None and len(window.points) == 1435


def test_a_longer_window_comes_from_the_history_and_meets_only_its_resolution(
    settings, redis_client
):
    """A 2-day profile (> full_duration) from the 600 s history matches a 2-day event
    through the history; a 2-day profile of raw points is never compared with it."""
    t, v = daily_pattern(days=5, seed=4)
    end = T_START + 2 * DAY + 6 * 3600
    with running(Ionosphere(settings)) as d:
        seed(d, "web.long", t, v)
        engine = make_engine(settings.database_url)
        hist = store_history(d.store, settings)
        rolled = create_profile(engine, redis_client, d.keys, settings, metric="web.long",
                                series=history_window(hist, "web.long", end, 2 * DAY),
                                anomaly_timestamp=end, full_duration=2 * DAY)  # fmt: skip
        raw = create_profile(engine, redis_client, d.keys, settings, metric="web.long",
                             series=training_window(d.store, "web.long", end, 2 * DAY),
                             anomaly_timestamp=end, full_duration=2 * DAY)  # fmt: skip
        event = dataclasses.replace(anomaly("web.long", ts=end + DAY), source="mirage",
                                    full_duration=2 * DAY)  # fmt: skip
        send(d, redis_client, event)
        wait_for(lambda: verdicts(redis_client, d.keys))
        (verdict,) = verdicts(redis_client, d.keys)
        assert verdict["verdict"] == "not_anomalous" and verdict["detail"]["profile_id"] == rolled
        window = d.window("web.long", end + DAY, 2 * DAY)
        assert window.resolution == 600 and len(window.points) == 288
    with Session(engine) as db:
        assert db.get(FeaturesProfile, rolled).checked_count == 1
        assert db.get(FeaturesProfile, raw).checked_count == 0
    engine.dispose()


def test_the_metrics_set_is_reconciled_periodically(settings, redis_client):
    with running(Ionosphere(settings)) as d:
        trained(d, redis_client, settings, "web.set")
        key = d.keys.ionosphere_metrics()
        wait_for(lambda: redis_client.smembers(key) == {b"web.set"})
        redis_client.srem(key, "web.set")  # an SREM/SADD lost after a profile change
        redis_client.sadd(key, "web.gone")
        wait_for(lambda: redis_client.smembers(key) == {b"web.set"}, timeout=30)
        wait_for(lambda: d.counters.peek().get("metrics_set.repaired", 0) >= 2, timeout=30)


def test_an_unmatched_anomaly_of_a_learn_metric_keeps_its_raw_window(settings, redis_client):
    """Learning runs after the raw store has trimmed the window's start: ionosphere
    keeps the raw window it checked (learn_windows) for the learn profile's duration."""
    t, v = daily_pattern(seed=6)
    with running(Ionosphere(settings)) as d:
        seed(d, "web.keep", t, v)
        engine = make_engine(settings.database_url)
        create_profile(engine, redis_client, d.keys, settings, metric="web.keep",
                       series=training_window(d.store, "web.keep", BUMP, DAY),
                       anomaly_timestamp=BUMP, full_duration=DAY, learn=True)  # fmt: skip
        spike = BUMP + DAY + 3 * 3600
        real_v = v.copy()
        near = (t > spike - 300) & (t <= spike)
        real_v[near] += 400
        seed(d, "web.keep", t[near], real_v[near])
        event = anomaly("web.keep", ts=spike)
        send(d, redis_client, event)
        wait_for(lambda: alerts(redis_client, d.keys))
    with Session(engine) as db:
        (kept,) = db.scalars(select(LearnWindow)).all()
        points = np.frombuffer(kept.points, np.float64).reshape(-1, 2)
        assert (kept.event_id, kept.full_duration, kept.timestamp) == (event.id, DAY, spike)
        assert (
            len(points) == 1440
            and points[-1, 0] == spike
            and points[-1, 1] == real_v[t == spike][0]
        )
    engine.dispose()


@pytest.mark.parametrize("body", ["5", '"x"', "null", "[]", "METRIC_NOT_A_STRING"])
def test_a_malformed_entry_is_acked_and_counted(settings, redis_client, body):
    with running(Ionosphere(settings)) as d:
        trained(d, redis_client, settings, "web.bad")
        wait_for(lambda: hasattr(d, "consumer"))
        if body == "METRIC_NOT_A_STRING":
            fields = json.loads(anomaly("web.bad", ts=BUMP + DAY).to_fields()["event"])
            body = json.dumps({**fields, "metric": 5})
        redis_client.xadd(d.keys.ionosphere_stream(), {"id": "bad", "event": body})
        good = anomaly("web.bad", ts=BUMP + DAY + 60)
        send(d, redis_client, good)
        wait_for(lambda: any(v["event_id"] == good.id for v in verdicts(redis_client, d.keys)))
        wait_for(lambda: pending(redis_client, d) == 0)
        assert d.counters.peek()["errors.malformed"] == 1
        assert verdicts(redis_client, d.keys)[-1]["verdict"] == "not_anomalous"


def test_dead_lettering_acks_an_entry_whatever_its_parse_raises(settings, redis_client,
                                                                monkeypatch):  # fmt: skip
    """A parser bug (not a ValueError) fails every delivery and the dead-letter path's
    own parse too: the entry is still acknowledged, counted, and the stream goes on."""
    with running(Ionosphere(settings)) as d:
        trained(d, redis_client, settings, "web.bug")
        wait_for(lambda: hasattr(d, "consumer"))

        def parser_bug(fields):  # a mock forcing the failure
            raise AttributeError("'int' object has no attribute 'pop'")

        monkeypatch.setattr(AnomalyEvent, "from_fields", parser_bug)
        send(d, redis_client, anomaly("web.bug", ts=BUMP + DAY))
        wait_for(lambda: d.counters.peek().get("errors.dead_letter") == 1, timeout=20)
        wait_for(lambda: pending(redis_client, d) == 0)
        assert d.counters.peek()["errors.malformed"] == 1
        monkeypatch.undo()
        good = anomaly("web.bug", ts=BUMP + DAY + 60)
        send(d, redis_client, good)
        wait_for(lambda: any(v["event_id"] == good.id for v in verdicts(redis_client, d.keys)))
        assert verdicts(redis_client, d.keys)[-1]["verdict"] == "not_anomalous"
        assert alerts(redis_client, d.keys) == []


def _unmatched_anomaly_of_a_learn_metric(d: Ionosphere, redis_client, settings,
                                         metric: str) -> AnomalyEvent:  # fmt: skip
    """A learn profile of ``metric`` and an anomaly it does not match."""
    t, v = daily_pattern(seed=6)
    seed(d, metric, t, v)
    engine = make_engine(settings.database_url)
    create_profile(engine, redis_client, d.keys, settings, metric=metric,
                   series=training_window(d.store, metric, BUMP, DAY),
                   anomaly_timestamp=BUMP, full_duration=DAY, learn=True)  # fmt: skip
    engine.dispose()
    spike = BUMP + DAY + 3 * 3600
    near = (t > spike - 300) & (t <= spike)
    seed(d, metric, t[near], v[near] + 400)
    return anomaly(metric, ts=spike)


def test_no_window_is_kept_while_learning_is_off(make_settings, tmp_path, db_url, redis_client):
    settings = pipeline_settings(make_settings, tmp_path, RULES, SKYLINE__DATABASE__URL=db_url,
                                 SKYLINE__IONOSPHERE__INTERVAL="0.2",
                                 SKYLINE__IONOSPHERE__LEARN_INTERVAL="0")  # fmt: skip
    with running(Ionosphere(settings)) as d:
        event = _unmatched_anomaly_of_a_learn_metric(d, redis_client, settings, "web.off")
        send(d, redis_client, event)
        wait_for(lambda: alerts(redis_client, d.keys))
        assert d.counters.peek()["not_matched"] == 1
    engine = make_engine(settings.database_url)
    with Session(engine) as db:
        assert db.scalars(select(LearnWindow)).all() == []
    engine.dispose()


def test_maintenance_prunes_learning_rows_while_learning_is_off(make_settings, tmp_path, db_url,
                                                                redis_client):  # fmt: skip
    """Rows older than learn_lookback go at the next maintenance, learning on or off."""
    settings = pipeline_settings(make_settings, tmp_path, RULES, SKYLINE__DATABASE__URL=db_url,
                                 SKYLINE__IONOSPHERE__INTERVAL="0.2",
                                 SKYLINE__IONOSPHERE__MAINTENANCE_INTERVAL="1",
                                 SKYLINE__IONOSPHERE__LEARN_INTERVAL="0")  # fmt: skip
    engine = make_engine(settings.database_url)
    recent = int(time.time()) - 3600
    with Session(engine) as db:
        m = get_or_create_metric(db, "web.prune")
        rows = {}
        for name, ts in (("old", BUMP), ("new", recent)):
            a = Anomaly(metric_id=m.id, timestamp=ts, value=1.0, full_duration=DAY,
                        source="analyzer", event_id=name, verdict="sent_to_alerters")  # fmt: skip
            db.add(a)
            db.flush()
            rows[name] = a.id
            db.add(LearnEvaluated(anomaly_id=a.id, anomaly_timestamp=ts))
            db.add(LearnWindow(event_id=name, full_duration=DAY, metric_id=m.id, timestamp=ts,
                               points=np.zeros((2, 2)).tobytes()))  # fmt: skip
        db.commit()

    def left() -> tuple[set[str], set[int]]:
        with Session(engine) as db:
            return (set(db.scalars(select(LearnWindow.event_id))),
                    set(db.scalars(select(LearnEvaluated.anomaly_id))))  # fmt: skip

    with running(Ionosphere(settings)):
        wait_for(lambda: left() == ({"new"}, {rows["new"]}), timeout=20)
    engine.dispose()


def test_a_learning_window_longer_than_the_rollups_is_warned_of(make_settings, tmp_path, db_url,
                                                                redis_client, caplog):  # fmt: skip
    settings = pipeline_settings(make_settings, tmp_path, RULES, SKYLINE__DATABASE__URL=db_url,
                                 SKYLINE__IONOSPHERE__LEARN_FULL_DURATION_DAYS="31")  # fmt: skip
    with running(Ionosphere(settings)) as d:
        wait_for(lambda: hasattr(d, "consumer"))
    assert any("longer than [mirage] rollup_retention" in r.getMessage() for r in caplog.records)
