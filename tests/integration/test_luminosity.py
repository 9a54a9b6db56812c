"""Luminosity on real Redis streams, a real store and real SQL (SQLite and MariaDB),
beside panorama: related metrics stored for the anomaly's row, bad and repeated
entries acknowledged without blocking the stream."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from skyline.analysis.luminosity import agent
from skyline.analysis.luminosity.agent import Luminosity, correlate_anomaly, read_lookback
from skyline.analysis.luminosity.correlate import Params, correlate, lookback_start, window_of
from skyline.db import make_engine
from skyline.db.models import Anomaly, Correlation, Metric
from skyline.events.anomaly import publish
from skyline.events.panorama.agent import Panorama
from skyline.store.keys import RedisKeys
from skyline.store.timeseries import TimeSeriesStore
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
        # both: a panorama slower than row_wait leaves the repeat pending a while
        wait_for(lambda: lum.counters.peek().get("anomalies") == 2
                 and lum.counters.peek().get("skipped.repeat") == 1)  # fmt: skip
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


NOT_OBJECTS = [b"5", b'"x"', b"null", b"[]"]


def test_entries_whose_event_is_not_an_object_or_metric_not_a_string_do_not_block(
    settings_for, tmp_path, redis_client
):
    """5, "x", null, [] as the event and a metric 42: each acknowledged and counted,
    and the good anomaly after them still correlated."""
    settings = settings_for(f"sqlite:///{tmp_path / 'db' / 'skyline.db'}")
    with running(Panorama(settings)), running(Luminosity(settings)) as lum:
        ts = seed_metrics(lum)
        stream = lum.keys.anomalies_stream()
        for body in NOT_OBJECTS:
            redis_client.xadd(stream, {"id": "bad", "event": body})
        fields = anomaly("web.latency", ts=ts - 60).to_fields()
        redis_client.xadd(stream, {**fields, "event": json.dumps({**json.loads(fields["event"]), "metric": 42})})  # fmt: skip
        publish(redis_client, lum.keys, anomaly("web.errors", ts=ts), 1000)
        wait_for(lambda: lum.counters.peek().get("anomalies") == 1, timeout=20)
        counters = lum.counters.peek()
        wait_for(lambda: redis_client.xpending(stream, "luminosity")["pending"] == 0)
    skipped = counters.get("skipped.malformed", 0) + counters.get("skipped.failed", 0)
    assert skipped == len(NOT_OBJECTS) + 1
    assert set(correlations(settings)) == {"web.latency", "db.load"}


def test_an_error_escaping_handle_is_counted_and_acked_not_retried_forever(
    settings_for, tmp_path, redis_client, monkeypatch
):
    """An error outside the correlation itself (here forced while waiting for the row)
    used to escape: the entry stayed pending and was re-read first, for good."""
    settings = settings_for(f"sqlite:///{tmp_path / 'db' / 'skyline.db'}")
    real = Luminosity._wait_for_row

    def poisoned(self, event):  # a mock only to force the failure, every delivery
        if event.metric == "poison.metric":
            raise TypeError("forced")
        return real(self, event)

    monkeypatch.setattr(Luminosity, "_wait_for_row", poisoned)
    with running(Panorama(settings)), running(Luminosity(settings)) as lum:
        ts = seed_metrics(lum)
        publish(redis_client, lum.keys, anomaly("poison.metric", ts=ts), 1000)
        publish(redis_client, lum.keys, anomaly("web.errors", ts=ts), 1000)
        wait_for(lambda: lum.counters.peek().get("anomalies") == 1, timeout=20)
        assert lum.counters.peek()["skipped.failed"] == 1
        wait_for(lambda: redis_client.xpending(lum.keys.anomalies_stream(), "luminosity")["pending"] == 0)  # fmt: skip
        assert "errors" not in lum.counters.peek()
    assert set(correlations(settings)) == {"web.latency", "db.load"}


END = 1_800_000_000 // 3600 * 3600


def mixed_store(redis_client) -> tuple[TimeSeriesStore, list[str]]:
    """A day of a 60 s anchor and of metrics at 10 s, 60 s (offset), 300 s, some
    following the anchor; one rewritten by roomba with late and duplicated points
    appended since, one reporting an hour past the anchor, one that started after
    the window's start, one with a gap over it, one empty."""
    store = TimeSeriesStore(redis_client, RedisKeys("lt:"))
    rng = np.random.default_rng(7)
    t60 = END - 60 * np.arange(1439, -1, -1)
    anchor = np.cumsum(rng.normal(0, 1, len(t60))) + 100
    anchor[-16:-10] += [20, 45, 30, 60, 80, 200]  # a spike ending at the anomaly, END - 600

    def put(name: str, t: np.ndarray, v: np.ndarray) -> None:
        store.append_grouped({name: (t.astype(float).tolist(), v.tolist())})

    put("a.anchor", t60, anchor)
    for i in range(4):
        put(f"r60.{i}", t60 + 17, 2 * anchor + rng.normal(0, 0.3 * (i + 1), len(t60)))
        t10 = END - 10 * np.arange(8639, -1, -1)
        put(f"r10.{i}", t10, np.interp(t10, t60, anchor) + rng.normal(0, 0.2, len(t10)))
        put(f"noise.{i}", t60, rng.normal(0, 1, len(t60)))
    t300 = END - 300 * np.arange(287, -1, -1)
    put("r300", t300, np.interp(t300, t60, anchor))
    put("rewritten", t60, anchor + rng.normal(0, 0.1, len(t60)))
    assert store.trim_many(["rewritten"], END, 43200, 0, 86400)["rewritten"] == 1
    late = END - 60 * rng.integers(0, 90, 40)  # out of order, duplicated, some in the window
    put("rewritten", late, rng.normal(100, 1, len(late)))
    put("newer", t60 + 3600, np.interp(t60 + 3600, t60, anchor) + rng.normal(0, 0.5, len(t60)))
    put("late.start", t60[-8:], anchor[-8:])
    kept = (t60 < END - 4500) | (t60 > END - 2000)  # no value at the window's start
    put("gap", t60[kept], anchor[kept])
    return store, ["empty", *sorted(n for n in store.metrics() if n != "a.anchor")]


def test_other_metrics_are_read_by_their_tails_with_every_point_the_window_needs(redis_client):
    """read_lookback (tails at the anchor's resolution, then at the metric's own, then
    whole) holds, for every metric, exactly the whole read's points from the lookback
    start on; correlate_anomaly finds what correlating the whole series finds; and it
    moves far fewer bytes out of Redis than the series hold (it used to read them all)."""
    store, names = mixed_store(redis_client)
    params, at = Params(), END - 600
    anchor = store.read("a.anchor")
    grid = window_of((anchor.timestamps, anchor.values), at, params)[0]
    base = lookback_start(grid)
    got = read_lookback(store, names, grid, int(anchor.timestamps[-1]))
    assert list(got) == names
    for name in names:
        whole, tail = store.read(name), got[name]
        want = [p for p in whole.pairs() if p[0] >= base]
        assert [p for p in tail.pairs() if p[0] >= base] == want, name

    wholes = store.read_many(names)
    others = [(n, s.timestamps, s.values) for n, s in wholes.items()]
    expected = correlate((anchor.timestamps, anchor.values), at, others, params)
    stored = sum(redis_client.strlen(store.keys.series(n)) for n in names)
    sent_before = redis_client.info("stats")["total_net_output_bytes"]
    outcome = correlate_anomaly(store, "a.anchor", at, names, params)
    sent = redis_client.info("stats")["total_net_output_bytes"] - sent_before
    assert outcome == expected
    assert {c.metric for c in outcome.correlations} >= {"r60.0", "r10.0", "r300", "newer"}
    assert outcome.incomplete == 3  # empty, late.start, gap
    assert sent < stored / 5, (sent, stored)
