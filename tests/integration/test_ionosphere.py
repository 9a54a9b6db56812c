"""The ionosphere daemon on real Redis streams and real SQL (SQLite and MariaDB):
a recurring pattern trained as a profile is silenced, a real anomaly alerts, broken
profiles are refused without stopping the daemon, ionosphere:metrics is rebuilt."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from skyline.analysis.ionosphere.agent import Ionosphere
from skyline.analysis.ionosphere.profiles import (
    create_profile,
    delete_profile,
    matches_for_anomaly,
    set_enabled,
    training_window,
)
from skyline.db import make_engine
from skyline.db.models import FeaturesProfile, ProfileFeature, ProfileMatch
from skyline.events.anomaly import AnomalyEvent, publish
from tests.conftest import wait_for
from tests.integration import conftest_db
from tests.integration.pipeline_fixtures import anomaly, pipeline_settings, running
from tests.integration.test_ionosphere_cache import memcached  # noqa: F401 - a fixture

db_url = conftest_db.db_url
mysql_url = conftest_db.mysql_url
DAY = 86400
T_START = 1_700_006_400 - 1_700_006_400 % DAY  # midnight UTC
RULES = '[[alerts]]\npattern = "web"\nchannel = "slack"\nexpiration = 3600\n'


def daily_pattern(days: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A day-long sine plus a bump every day at 06:00 (the recurring "anomaly")."""
    rng = np.random.default_rng(seed)
    t = T_START + 60 * np.arange(days * 1440)
    tod = (t - T_START) % DAY
    v = 100 + 20 * np.sin(2 * np.pi * tod / DAY) + rng.normal(0, 1, len(t))
    v += np.where((tod >= 6 * 3600 - 1800) & (tod <= 6 * 3600), 40.0, 0.0)
    return t, v


@pytest.fixture
def settings(make_settings, tmp_path, db_url):
    return pipeline_settings(make_settings, tmp_path, RULES, SKYLINE__DATABASE__URL=db_url,
                             SKYLINE__IONOSPHERE__INTERVAL="0.2")  # fmt: skip


def seed(daemon: Ionosphere, metric: str, t: np.ndarray, v: np.ndarray) -> None:
    daemon.store.append_grouped({metric: (t.tolist(), v.tolist())})


def verdicts(redis_client, keys, stage: str = "ionosphere") -> list[dict]:
    out = [json.loads(f[b"verdict"]) for _, f in redis_client.xrange(keys.verdicts_stream())]
    return [v for v in out if v["stage"] == stage]


def alerts(redis_client, keys) -> list[AnomalyEvent]:
    return [AnomalyEvent.from_fields(f) for _, f in redis_client.xrange(keys.alerts_stream())]


def test_a_trained_pattern_is_silenced_and_a_real_anomaly_alerts(settings, redis_client):
    metric = "web.latency"
    t, v = daily_pattern()
    bump = T_START + DAY + 6 * 3600  # day 1, end of the bump (a full day before it)
    engine = make_engine(settings.database_url)
    with running(Ionosphere(settings)) as d:
        seed(d, metric, t, v)
        window = training_window(d.store, metric, bump, DAY)
        pid = create_profile(engine, redis_client, d.keys, settings, metric=metric, series=window,
                             anomaly_timestamp=bump, full_duration=DAY, label="daily backup")  # fmt: skip
        again = anomaly(metric, ts=bump + DAY, value=float(v[t == bump + DAY][0]))
        publish(redis_client, d.keys, again, 1000, stream=d.keys.ionosphere_stream())
        wait_for(lambda: verdicts(redis_client, d.keys))
        (verdict,) = verdicts(redis_client, d.keys)
        assert verdict["verdict"] == "not_anomalous" and verdict["event_id"] == again.id
        assert verdict["detail"]["profile_id"] == pid
        assert verdict["detail"]["match_type"] == "features"
        assert verdict["detail"]["percent_different"] < 1.0
        assert alerts(redis_client, d.keys) == []

        spike = bump + DAY + 3 * 3600
        real_v = v.copy()
        real_v[(t > spike - 300) & (t <= spike)] += 400  # a real spike, never trained
        seed(
            d, metric, t[(t > spike - 300) & (t <= spike)], real_v[(t > spike - 300) & (t <= spike)]
        )
        real = anomaly(metric, ts=spike, value=500.0)
        publish(redis_client, d.keys, real, 1000, stream=d.keys.ionosphere_stream())
        wait_for(lambda: alerts(redis_client, d.keys))
        assert [a.id for a in alerts(redis_client, d.keys)] == [real.id]
        last = verdicts(redis_client, d.keys)[-1]
        assert last["event_id"] == real.id and last["verdict"] == "sent_to_alerters"
        assert "no profile of 1 matched" in last["reason"]
        counters = d.counters.peek()
        assert counters["checks"] == 2 and counters["matched"] == 1 and counters["not_matched"] == 1
    with Session(engine) as db:
        fp = db.get(FeaturesProfile, pid)
        assert fp.checked_count == 2 and fp.last_checked is not None
        assert fp.matched_count == 1 and fp.last_matched is not None
        (match,) = db.scalars(select(ProfileMatch)).all()
        assert match.event_id == again.id and match.metric_timestamp == again.timestamp
    assert [m["profile_id"] for m in matches_for_anomaly(engine, again.id)] == [pid]
    engine.dispose()


def test_corrupt_profiles_are_refused_and_the_daemon_keeps_going(settings, redis_client):
    t, v = daily_pattern(seed=3)
    bump = T_START + DAY + 6 * 3600
    engine = make_engine(settings.database_url)
    with running(Ionosphere(settings)) as d:
        for metric in ("web.broken", "web.good"):
            seed(d, metric, t, v)
        ids = {m: create_profile(engine, redis_client, d.keys, settings, metric=m,
                                 series=training_window(d.store, m, bump, DAY),
                                 anomaly_timestamp=bump, full_duration=DAY)
               for m in ("web.broken", "web.good")}  # fmt: skip
        with Session(engine) as db:  # the broken profile loses its features
            db.execute(delete(ProfileFeature).where(ProfileFeature.profile_id == ids["web.broken"]))
            db.commit()
        broken = anomaly("web.broken", ts=bump + DAY)
        publish(redis_client, d.keys, broken, 1000, stream=d.keys.ionosphere_stream())
        wait_for(lambda: alerts(redis_client, d.keys))
        assert [a.id for a in alerts(redis_client, d.keys)] == [broken.id]  # still alerts
        assert d.counters.peek()["errors.corrupt_profile"] == 1
        assert "no usable profile" in verdicts(redis_client, d.keys)[-1]["reason"]
        redis_client.xadd(d.keys.ionosphere_stream(), {"event": "not json"})
        short = anomaly("web.good", ts=T_START + 300)  # a window of 5 points
        good = anomaly("web.good", ts=bump + DAY)
        for e in (short, good):
            publish(redis_client, d.keys, e, 1000, stream=d.keys.ionosphere_stream())
        wait_for(lambda: len(verdicts(redis_client, d.keys)) == 3)
        by_id = {x["event_id"]: x for x in verdicts(redis_client, d.keys)}
        assert by_id[good.id]["verdict"] == "not_anomalous"
        assert by_id[short.id]["verdict"] == "sent_to_alerters"
        assert "could not check" in by_id[short.id]["reason"]
        c = d.counters.peek()
        assert c["errors.malformed"] == 1 and c["errors.features"] == 1
        # every entry is acknowledged once its verdict is written: just after, not with it
        wait_for(
            lambda: redis_client.xpending(d.keys.ionosphere_stream(), "ionosphere")["pending"] == 0
        )
    engine.dispose()


def test_metrics_set_is_rebuilt_from_sql_at_start(settings, redis_client):
    t, v = daily_pattern()
    engine = make_engine(settings.database_url)
    daemon = Ionosphere(settings)
    seed(daemon, "web.a", t, v)
    bump = T_START + DAY + 6 * 3600
    create_profile(engine, redis_client, daemon.keys, settings, metric="web.a",
                   series=training_window(daemon.store, "web.a", bump, DAY),
                   anomaly_timestamp=bump, full_duration=DAY)  # fmt: skip
    key = daemon.keys.ionosphere_metrics()
    redis_client.delete(key)
    redis_client.sadd(key, "stale.metric")
    with running(daemon):
        wait_for(lambda: redis_client.smembers(key) == {b"web.a"})
    engine.dispose()


def test_a_longer_mirage_window_is_compared_at_the_profiles_duration_by_motif(
    make_settings, tmp_path, db_url, redis_client
):
    """A 2-day (mirage) event meets a 24 h profile on its last 24 h; with the features
    test made impossible (0 %), the recurring bump is matched by its motif."""
    settings = pipeline_settings(make_settings, tmp_path, RULES, SKYLINE__DATABASE__URL=db_url,
                                 SKYLINE__IONOSPHERE__INTERVAL="0.2",
                                 SKYLINE__IONOSPHERE__FEATURES_PERCENT_SIMILAR="0")  # fmt: skip
    t, v = daily_pattern(seed=5)
    bump = T_START + DAY + 6 * 3600
    engine = make_engine(settings.database_url)
    with running(Ionosphere(settings)) as d:
        seed(d, "web.mirage", t, v)
        pid = create_profile(engine, redis_client, d.keys, settings, metric="web.mirage",
                             series=training_window(d.store, "web.mirage", bump, DAY),
                             anomaly_timestamp=bump, full_duration=DAY)  # fmt: skip
        event = dataclasses.replace(anomaly("web.mirage", ts=bump + DAY), source="mirage",
                                    full_duration=2 * DAY)  # fmt: skip
        publish(redis_client, d.keys, event, 1000, stream=d.keys.ionosphere_stream())
        wait_for(lambda: verdicts(redis_client, d.keys))
        (verdict,) = verdicts(redis_client, d.keys)
        assert verdict["verdict"] == "not_anomalous"
        assert verdict["detail"]["profile_id"] == pid
        assert verdict["detail"]["match_type"] == "motif"
        assert verdict["detail"]["distance"] <= settings.ionosphere.motif_max_distance
        assert alerts(redis_client, d.keys) == []
    with Session(engine) as db:
        fp = db.get(FeaturesProfile, pid)
        assert fp.motif_matched_count == 1 and fp.matched_count == 0
        assert db.scalars(select(ProfileMatch)).one().match_type == "motif"
    engine.dispose()


@pytest.mark.parametrize("cache", ["local", "memcached"])
def test_profile_changes_take_effect_on_the_next_check(
    make_settings, tmp_path, db_url, redis_client, request, cache
):
    address = request.getfixturevalue("memcached")[1] if cache == "memcached" else ""
    settings = pipeline_settings(make_settings, tmp_path, RULES, SKYLINE__DATABASE__URL=db_url,
                                 SKYLINE__IONOSPHERE__INTERVAL="0.2",
                                 SKYLINE__IONOSPHERE__MEMCACHED=address)  # fmt: skip
    t, v = daily_pattern(seed=9)
    bump = T_START + DAY + 6 * 3600
    engine = make_engine(settings.database_url)
    with running(Ionosphere(settings)) as d:
        seed(d, "web.cached", t, v)
        pid = create_profile(engine, redis_client, d.keys, settings, metric="web.cached",
                             series=training_window(d.store, "web.cached", bump, DAY),
                             anomaly_timestamp=bump, full_duration=DAY)  # fmt: skip

        def outcome(ts: int) -> str:
            event = anomaly("web.cached", ts=ts)
            publish(redis_client, d.keys, event, 1000, stream=d.keys.ionosphere_stream())
            found = wait_for(lambda: [x for x in verdicts(redis_client, d.keys)
                                      if x["event_id"] == event.id])  # fmt: skip
            return found[0]["verdict"]

        assert outcome(bump + DAY) == "not_anomalous"
        set_enabled(engine, redis_client, d.keys, pid, False)
        assert outcome(bump + DAY + 60) == "sent_to_alerters"
        set_enabled(engine, redis_client, d.keys, pid, True)
        assert outcome(bump + DAY + 120) == "not_anomalous"
        delete_profile(engine, redis_client, d.keys, pid)
        assert outcome(bump + DAY + 180) == "sent_to_alerters"
        assert d.counters.peek().get("cache.errors", 0) == 0
    engine.dispose()
