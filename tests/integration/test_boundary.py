"""The boundary daemon on a real Redis, fed the way horizon writes (store appends that
also announce the metric in the changed set): alerts after N consecutive breaches and
not before, reset by a good point, counts kept across a restart, the analyzer's
changed set left alone, and hostile input (rules matching nothing, NaN/inf values, a
metric deleted while watched).  Alert delivery is in tests/e2e/test_boundary_e2e.py."""

from __future__ import annotations

import time

import numpy as np
import pytest
import redis

from skyline.alerting.rate_limits import limit_for, over_limit
from skyline.analysis.boundary import breaches
from skyline.analysis.boundary.agent import Boundary
from skyline.events.anomaly import VerdictEvent, read_all
from skyline.settings.alerting import ChannelLimit
from skyline.store.keys import RedisKeys
from tests.conftest import wait_for
from tests.integration.pipeline_fixtures import running

STEP = 60

RULES = """
[boundary_daemon]
interval = 0.05
metrics_refresh = 0.2
[[boundary]]
pattern = "stats.queue.depth"
algorithm = "greater_than"
limit = 100.0
alert_threshold = 3
channels = ["slack"]
"""


@pytest.fixture
def boundary_settings(make_settings, tmp_path):
    def make(conf: str = RULES):
        path = tmp_path / "skyline.conf"
        path.write_text(conf)
        return make_settings(path, SKYLINE__SKYLINE__HOST="testhost")

    return make


def feed(store, metric: str, ts: int, value: float) -> None:
    """One datapoint, written as horizon writes it (append + metrics set + changed set)."""
    store.append_grouped({metric: ([ts], [value])}, changed=True)


def history(store, metric: str, end: int, n: int = 100, level: float = 50.0) -> None:
    ts = end - STEP * np.arange(n)[::-1]
    values = level + np.random.default_rng(5).normal(0, 1, n)
    store.append_grouped({metric: (ts.tolist(), values.tolist())}, changed=True)


def count(daemon: Boundary, rule: int, metric: str) -> breaches.Count:
    return breaches.parse(daemon.redis.get(daemon.keys.boundary_breaches(rule, metric)))


def judged(daemon: Boundary, metric: str, ts: int, rule: int = 0) -> breaches.Count:
    """Wait until the daemon has judged ``metric`` up to ``ts``."""
    return wait_for(lambda: (c := count(daemon, rule, metric)).last_ts == ts and c)


def events(daemon: Boundary):
    return read_all(daemon.redis, daemon.keys)


def test_alerts_after_n_consecutive_breaches_and_not_before(boundary_settings):
    metric = "stats.queue.depth"
    with running(Boundary(boundary_settings()), ready="watched") as d:
        end = int(time.time()) - 10 * STEP
        history(d.store, metric, end)
        judged(d, metric, end)
        ts = end
        for expected, value in [(1, 150.0), (2, 180.0), (0, 90.0), (1, 150.0), (2, 160.0)]:
            ts += STEP
            feed(d.store, metric, ts, value)
            assert judged(d, metric, ts).breaches == expected
        assert events(d) == []  # 2 breaches, reset, 2 breaches: never 3 in a row
        ts += STEP
        feed(d.store, metric, ts, 170.0)
        assert judged(d, metric, ts).breaches == 3
        (event,) = wait_for(lambda: events(d))
        c = wait_for(lambda: (c := d.counters.peek()).get("alerts") and c)
        assert c["breaches"] == 5 and c["alerts"] == 1 and c["checked"] == 7
    assert (event.metric, event.timestamp, event.value) == (metric, ts, 170.0)
    assert event.source == "boundary" and event.triggered == ("greater_than",)
    assert event.algorithms_run == ("greater_than",) and event.host == "testhost"
    assert event.scores == {"greater_than.score": 170.0, "greater_than.limit": 100.0,
                            "greater_than.breaches": 3.0}  # fmt: skip
    on_alerts = d.redis.xrange(d.keys.alerts_stream())
    assert len(on_alerts) == 1  # forward(): straight to the alerters
    verdict = VerdictEvent.from_fields(d.redis.xrange(d.keys.verdicts_stream())[0][1])
    assert (verdict.stage, verdict.verdict) == ("boundary", "sent_to_alerters")
    # the analyzer's notifications were not consumed
    assert d.redis.sismember(d.keys.changed(), metric)


def test_a_restart_keeps_the_count_and_judges_no_point_twice(boundary_settings):
    metric = "stats.queue.depth"
    settings = boundary_settings()
    end = int(time.time()) - 10 * STEP
    with running(Boundary(settings), ready="watched") as d:
        history(d.store, metric, end)
        judged(d, metric, end)
        for i, value in enumerate((150.0, 160.0), start=1):
            feed(d.store, metric, end + i * STEP, value)
            judged(d, metric, end + i * STEP)
    feed(d.store, metric, end + 3 * STEP, 170.0)  # arrives while boundary is down
    with running(Boundary(settings), ready="watched") as d2:
        assert judged(d2, metric, end + 3 * STEP).breaches == 3
        wait_for(lambda: events(d2))
        assert wait_for(lambda: d2.counters.peek().get("alerts")) == 1
        assert d2.counters.peek()["checked"] == 1  # only the point that arrived meanwhile
    assert [e.timestamp for e in events(d2)] == [end + 3 * STEP]


def test_a_roomba_rewrite_is_read_whole_and_no_point_is_judged_twice(boundary_settings):
    metric = "stats.queue.depth"
    with running(Boundary(boundary_settings()), ready="watched") as d:
        end = int(time.time()) - 10 * STEP
        history(d.store, metric, end)
        feed(d.store, metric, end + STEP, 150.0)
        judged(d, metric, end + STEP)
        checked = d.counters.peek()["checked"]
        outcome = d.store.trim_many([metric], now=time.time(), keep_seconds=3000, grace=0,
                                    inactive_after=86400)  # fmt: skip
        assert outcome["rewritten"] == 1
        feed(d.store, metric, end + 2 * STEP, 160.0)
        assert judged(d, metric, end + 2 * STEP).breaches == 2
        assert d.counters.peek()["checked"] == checked + 1


def test_drop_off_cliff_and_less_than_on_one_metric(boundary_settings):
    conf = """
[boundary_daemon]
interval = 0.05
metrics_refresh = 0.2
[[boundary]]
pattern = "shop"
algorithm = "detect_drop_off_cliff"
channels = ["slack"]
[[boundary]]
pattern = "shop.orders"
algorithm = "less_than"
limit = 10.0
alert_threshold = 2
channels = ["slack"]
"""
    metric = "shop.orders"
    with running(Boundary(boundary_settings(conf)), ready="watched") as d:
        end = int(time.time()) - 10 * STEP
        history(d.store, metric, end, level=500.0)
        judged(d, metric, end)
        feed(d.store, metric, end + STEP, 2.0)  # a cliff, and a first less_than breach
        (first,) = wait_for(lambda: events(d))
        assert first.triggered == ("detect_drop_off_cliff",)
        assert first.algorithms_run == ("detect_drop_off_cliff", "less_than")
        feed(d.store, metric, end + 2 * STEP, 3.0)  # less_than's second; the low is not new
        wait_for(lambda: len(events(d)) == 2)
        assert events(d)[1].triggered == ("less_than",)
        assert d.counters.peek()["skipped_similar_lows"] == 1


def test_min_average_keeps_a_quiet_metric_from_alerting(boundary_settings):
    conf = """
[boundary_daemon]
interval = 0.05
metrics_refresh = 0.2
[[boundary]]
pattern = "stats.payments.succeeded"
algorithm = "less_than"
limit = 5.0
min_average = 20.0
min_average_seconds = 1800
"""
    metric = "stats.payments.succeeded"
    with running(Boundary(boundary_settings(conf)), ready="watched") as d:
        end = int(time.time()) - 100 * STEP
        history(d.store, metric, end, level=8.0)  # a quiet night: average 8
        judged(d, metric, end)
        feed(d.store, metric, end + STEP, 1.0)
        assert judged(d, metric, end + STEP).breaches == 0
        assert d.counters.peek()["skipped_min_average"] == 2
        history(d.store, metric, end + 61 * STEP, n=60, level=100.0)  # busy: average 100
        judged(d, metric, end + 61 * STEP)
        feed(d.store, metric, end + 62 * STEP, 1.0)
        assert judged(d, metric, end + 62 * STEP).breaches == 1
        (event,) = wait_for(lambda: events(d))
    assert event.value == 1.0 and event.triggered == ("less_than",)


def test_hostile_input_is_counted_and_survived(boundary_settings):
    conf = (
        RULES
        + """
[[boundary]]
pattern = "^nothing\\\\.matches\\\\.this$"
algorithm = "less_than"
[[boundary]]
pattern = "stats.gone"
algorithm = "greater_than"
limit = 1000.0
"""
    )
    good, gone = "stats.queue.depth", "stats.gone"
    end = int(time.time()) - 10 * STEP
    with running(Boundary(boundary_settings(conf)), ready="watched") as d:
        history(d.store, good, end)
        history(d.store, gone, end)
        judged(d, good, end)
        judged(d, gone, end, rule=2)
        assert d.counters.peek()["rules_matching_nothing"] == 1
        feed(d.store, good, end + STEP, float("nan"))
        feed(d.store, good, end + 2 * STEP, float("inf"))
        feed(d.store, good, end + 3 * STEP, float("-inf"))
        wait_for(lambda: d.counters.peek().get("dropped_nonfinite") == 3)
        assert count(d, 0, good).last_ts == end  # nothing judged, nothing reset
        d.store.delete(gone)
        wait_for(lambda: d.counters.peek().get("metrics_vanished") == 1)
        assert gone not in d.watched
        for i in range(4, 7):
            feed(d.store, good, end + i * STEP, 500.0)
        wait_for(lambda: events(d))
        feed(d.store, gone, end + 7 * STEP, 5000.0)  # it comes back: watched again, judged
        wait_for(lambda: count(d, 2, gone).last_ts == end + 7 * STEP)
        c = d.counters.peek()
        assert c.get("errors", 0) == 0 and c.get("metric_errors", 0) == 0
    assert [e.metric for e in events(d)] == [good, gone]


def test_channel_rate_limit_windows(redis_client):
    keys = RedisKeys("t:")
    limits = {"slack": ChannelLimit(limit=2, period=60), "smtp": ChannelLimit(limit=1, period=60)}
    t0 = 1_700_000_040  # a window starts at 1_700_000_040 (a multiple of 60)
    assert [over_limit(redis_client, keys, limits, "slack", t0 + i) for i in range(3)] == [
        False, False, True]  # fmt: skip
    assert not over_limit(redis_client, keys, limits, "slack", t0 + 60)  # the next window
    assert 60 < redis_client.ttl(keys.boundary_rate("slack", t0)) <= 120
    # an address counts as smtp; a channel not listed is never limited
    assert not over_limit(redis_client, keys, limits, "ops@example.com", t0)
    assert over_limit(redis_client, keys, limits, "smtp", t0)
    assert not any(over_limit(redis_client, keys, limits, "syslog", t0) for _ in range(50))
    assert limit_for(limits, "a@b.c") == ("smtp", limits["smtp"])


def test_counts_and_events_lost_to_an_outage_are_judged_again(boundary_settings, monkeypatch):
    metric = "stats.queue.depth"
    d = Boundary(boundary_settings())
    d.setup()
    end = int(time.time()) - 10 * STEP
    history(d.store, metric, end)
    d.run_once()
    for i, value in enumerate((150.0, 160.0), start=1):
        feed(d.store, metric, end + i * STEP, value)
        d.run_once()
    feed(d.store, metric, end + 3 * STEP, 170.0)  # the third breach: an alert
    real_pipeline = d.redis.pipeline

    def failing_pipeline(*args, **kwargs):
        pipe = real_pipeline(*args, **kwargs)

        def execute(*_a, **_k):
            raise redis.ConnectionError("forced: Redis went away")

        pipe.execute = execute
        return pipe

    monkeypatch.setattr(d.redis, "pipeline", failing_pipeline)
    with pytest.raises(redis.ConnectionError):
        d.run_once()
    monkeypatch.setattr(d.redis, "pipeline", real_pipeline)
    assert count(d, 0, metric).breaches == 2 and events(d) == []
    d.run_once()
    assert count(d, 0, metric) == breaches.Count(3, end + 3 * STEP)
    assert [e.timestamp for e in events(d)] == [end + 3 * STEP]


def test_a_deleted_metric_counts_as_vanished_when_the_refresh_notices_first(boundary_settings):
    # the name list is refreshed before every read here: the refresh, not the read,
    # sees the deletion (the hostile-input test above races the two)
    conf = RULES.replace("metrics_refresh = 0.2", "metrics_refresh = 0.001")
    metric, end = "stats.queue.depth", int(time.time()) - 10 * STEP
    with running(Boundary(boundary_settings(conf)), ready="watched") as d:
        history(d.store, metric, end)
        judged(d, metric, end)
        d.store.delete(metric)
        wait_for(lambda: d.counters.peek().get("metrics_vanished") == 1)
        wait_for(lambda: d.counters.peek().get("metrics_watched") == 0)
