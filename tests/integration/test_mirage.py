"""The mirage daemon on a real Redis: a daily peak the analyzer flags over 24 h is
cleared over 7 days of rollups; a level shift is confirmed and reaches the alerts
stream; expired checks are alerted unconfirmed and malformed entries dropped, both
counted; an outage
mid-check leaves the entry pending and it is judged once Redis answers."""

from __future__ import annotations

import time

import numpy as np
import pytest
import redis

from skyline.analysis.analyzer.agent import Analyzer
from skyline.analysis.mirage.agent import Mirage
from skyline.events.anomaly import AnomalyEvent, VerdictEvent
from skyline.store.rollups import Rollups
from skyline.store.timeseries import TimeSeriesStore
from tests.conftest import wait_for
from tests.integration.pipeline_fixtures import anomaly, pipeline_settings, running

RES = 600
DAY = 86400

CONF = """
[alerters.slack]
token = "xoxb-mirage"
channel = "C0SKY"
[[alerts]]
pattern = "shop"
channel = "slack"
expiration = 3600
mirage_hours = 168
"""


def history_of_days(store: TimeSeriesStore, metric: str, values: np.ndarray, end: int,
                    resolution: int = RES) -> None:  # fmt: skip
    """Minutely ``values`` ending at ``end`` into the store, folded into rollups as
    horizon's roomba would, and the raw series trimmed to its 24 h."""
    ts = end - 60 * np.arange(len(values))[::-1]
    store.append_grouped({metric: (ts.tolist(), values.tolist())})
    Rollups(store, resolution).roll_up([metric], now=end, retention=30 * DAY, lag=60)
    store.trim_many([metric], now=end, keep_seconds=DAY, grace=0, inactive_after=DAY)
    assert len(store.read(metric)) <= 1441


def daily_peak(days: int = 8, seed: int = 5) -> np.ndarray:
    """Around 100, and 300 for ten minutes once a day; the last point starts today's."""
    n = days * 1440 + 1
    v = 100 + np.random.default_rng(seed).normal(0, 2, n)
    for day in range(days + 1):
        start = n - 1 - day * 1440
        v[max(0, start) : start + 10] = 300.0
    return v


def level_shift(days: int = 8, seed: int = 6) -> np.ndarray:
    v = 100 + np.random.default_rng(seed).normal(0, 2, days * 1440 + 1)
    v[-3:] = 160.0
    return v


def bucket_end(extra: int = 0) -> int:
    """A recent timestamp ``extra`` seconds past a bucket start."""
    now = int(time.time())
    return now - now % RES + extra


def verdicts(client: redis.Redis, keys) -> list[VerdictEvent]:
    return [VerdictEvent.from_fields(f) for _, f in client.xrange(keys.verdicts_stream())]


def trail(client: redis.Redis, keys, metric: str) -> list[tuple[str, str]]:
    return [(v.stage, v.verdict) for v in verdicts(client, keys) if v.metric == metric]


def alerts(client: redis.Redis, keys) -> list[AnomalyEvent]:
    return [AnomalyEvent.from_fields(f) for _, f in client.xrange(keys.alerts_stream())]


@pytest.fixture
def settings(make_settings, tmp_path):
    return pipeline_settings(make_settings, tmp_path, CONF, SKYLINE__MIRAGE__INTERVAL="0.1")


def detect(settings, metric: str, end: int) -> list[AnomalyEvent]:
    """The real analyzer's pass over ``metric`` at ``end`` (as on arrival)."""
    analyzer = Analyzer(settings, clock=lambda: end + 1.0)
    analyzer.setup()
    return analyzer.analyse_metrics([metric], "arrival")


def test_daily_peak_flagged_over_24h_is_cleared_over_7_days(settings):
    with running(Mirage(settings)) as mirage:
        wait_for(lambda: mirage.redis.exists(mirage.keys.heartbeat("mirage")))
        end = bucket_end()
        history_of_days(mirage.store, "shop.visits", daily_peak(), end)
        events = detect(settings, "shop.visits", end)
        assert [e.timestamp for e in events] == [end], "the analyzer must flag the peak"
        wait_for(lambda: mirage.counters.peek().get("cleared") == 1)
        counts = mirage.counters.peek()
    assert trail(mirage.redis, mirage.keys, "shop.visits") == [
        ("analyzer", "sent_to_mirage"), ("mirage", "not_anomalous")]  # fmt: skip
    verdict = verdicts(mirage.redis, mirage.keys)[-1]
    assert verdict.reason.startswith("recurs daily: 7 similar peaks over 168 h at 600 s")
    assert verdict.detail["window_points"] == 1009 and verdict.detail["source"] == "rollups"
    assert alerts(mirage.redis, mirage.keys) == []
    assert counts["checks"] == counts["cleared"] == counts["history_source.rollups"] == 1


def test_level_shift_is_confirmed_and_reaches_the_alerts_stream(settings):
    with running(Mirage(settings)) as mirage:
        wait_for(lambda: mirage.redis.exists(mirage.keys.heartbeat("mirage")))
        end = bucket_end(120)
        history_of_days(mirage.store, "shop.orders", level_shift(), end)
        events = detect(settings, "shop.orders", end)
        # the detector flags the shift's first point (one anomaly per event)
        assert [e.timestamp for e in events] == [end - 2 * 60]
        wait_for(lambda: mirage.counters.peek().get("confirmed") == 1)
        wait_for(lambda: mirage.consumer.pending_count() == 0)
    assert [a.id for a in alerts(mirage.redis, mirage.keys)] == [events[0].id]
    assert trail(mirage.redis, mirage.keys, "shop.orders") == [
        ("analyzer", "sent_to_mirage"), ("mirage", "sent_to_alerters")]  # fmt: skip
    reason = verdicts(mirage.redis, mirage.keys)[-1].reason
    assert reason.startswith("anomalous over 168 h at 600 s:"), reason


def test_no_history_is_confirmed_as_insufficient(settings):
    with running(Mirage(settings)) as mirage:
        mirage.redis.xadd(mirage.keys.mirage_stream(), anomaly("shop.new").to_fields())
        wait_for(lambda: alerts(mirage.redis, mirage.keys))
    reason = verdicts(mirage.redis, mirage.keys)[-1].reason
    assert reason.startswith("insufficient history: 0 of 1008 buckets")


def test_expired_checks_are_passed_on_unconfirmed_and_malformed_ones_dropped(settings):
    """An entry older than max_check_age (a backlog, an outage, a restart) is not
    judged but alerted, never dropped; a malformed one is dropped and counted."""
    with running(Mirage(settings)) as mirage:
        stream = mirage.keys.mirage_stream()
        old_ms = int((time.time() - 301) * 1000)
        old = anomaly("shop.old")
        mirage.redis.xadd(stream, old.to_fields(), id=f"{old_ms}-0")
        mirage.redis.xadd(stream, {"junk": "1"})
        mirage.redis.xadd(stream, {"event": "{not json"})
        wait_for(lambda: mirage.counters.peek().get("malformed_entries") == 2)
        wait_for(lambda: mirage.counters.peek().get("expired") == 1)
        wait_for(lambda: mirage.consumer.pending_count() == 0)
    assert trail(mirage.redis, mirage.keys, "shop.old") == [("mirage", "sent_to_alerters")]
    reason = verdicts(mirage.redis, mirage.keys)[-1].reason
    assert reason.startswith("expired after 30") and "alerted unconfirmed" in reason, reason
    assert [a.id for a in alerts(mirage.redis, mirage.keys)] == [old.id]
    assert "checks" not in mirage.counters.peek()


def test_an_outage_mid_check_leaves_it_pending_and_it_is_judged_later(settings, monkeypatch):
    failures = {"left": 2}
    real = Rollups.history

    def flaky(self, metric, start, end):  # a mock that only forces a failure
        if failures["left"]:
            failures["left"] -= 1
            raise redis.ConnectionError("forced")
        return real(self, metric, start, end)

    monkeypatch.setattr(Rollups, "history", flaky)
    with running(Mirage(settings)) as mirage:
        mirage.redis.xadd(mirage.keys.mirage_stream(), anomaly("shop.flaky").to_fields())
        wait_for(lambda: alerts(mirage.redis, mirage.keys), timeout=20)
        wait_for(lambda: mirage.consumer.pending_count() == 0)
        counts = mirage.counters.peek()
    assert failures["left"] == 0 and counts["outages"] == 2 and counts["confirmed"] == 1
    assert trail(mirage.redis, mirage.keys, "shop.flaky") == [("mirage", "sent_to_alerters")]


def test_horizons_roomba_folds_rollups_and_deletes_them_with_inactive_metrics(settings):
    from skyline.ingest.horizon.agent import Horizon

    now = bucket_end()
    horizon = Horizon(settings, clock=lambda: float(now))
    horizon._next_roomba = horizon._next_rollup = 0.0  # roomba without the listeners
    store = horizon.store
    rollups = Rollups(store, settings.mirage.rollup_resolution)
    ts = now - 60 * np.arange(180)[::-1]
    store.append_grouped({"shop.live": (ts.tolist(), [1.0] * 180),
                          "shop.gone": ((ts - 2 * DAY).tolist(), [2.0] * 180)})  # fmt: skip
    horizon.roomba()
    counts = horizon.counters.peek()
    assert len(rollups.read("shop.live")) == 16  # 3 h less the cut first and open last buckets
    assert counts["rollups.buckets_written"] == 2 * 16  # both folded, then one deleted
    assert counts["roomba.deleted"] == 1 and counts["rollups.metrics_read"] == 2
    assert len(rollups.read("shop.gone")) == 0 and store.metrics() == ["shop.live"]
    assert not store.redis.exists(rollups.key("shop.gone"))
    horizon.roomba()  # within rollup_interval: no second fold
    assert horizon.counters.peek()["rollups.buckets_written"] == 2 * 16


def test_a_failing_rollup_pass_is_counted_and_the_trim_still_runs(settings, monkeypatch):
    from skyline.ingest.horizon.agent import Horizon

    now = bucket_end()
    horizon = Horizon(settings, clock=lambda: float(now))
    horizon._next_roomba = horizon._next_rollup = 0.0
    ts = now - 60 * np.arange(180)[::-1]
    horizon.store.append_grouped({"shop.old": ((ts - 2 * DAY).tolist(), [2.0] * 180)})

    def broken(self, *args, **kwargs):  # a mock that only forces a failure
        raise ValueError("forced")

    monkeypatch.setattr(Rollups, "roll_up", broken)
    horizon.roomba()
    counts = horizon.counters.peek()
    assert counts["rollups.errors"] == 1 and counts["roomba.deleted"] == 1
    assert horizon.store.metrics() == []


def test_roomba_folds_only_the_metrics_a_mirage_rule_matches(settings):
    from skyline.ingest.horizon.agent import Horizon

    now = bucket_end()
    horizon = Horizon(settings, clock=lambda: float(now))
    horizon._next_roomba = horizon._next_rollup = 0.0
    ts = now - 60 * np.arange(180)[::-1]
    horizon.store.append_grouped({"shop.x": (ts.tolist(), [1.0] * 180),
                                  "web.y": (ts.tolist(), [1.0] * 180)})  # fmt: skip
    horizon.roomba()
    rollups = Rollups(horizon.store, settings.mirage.rollup_resolution)
    assert len(rollups.read("shop.x")) == 16 and not horizon.redis.exists(rollups.key("web.y"))
    assert horizon.counters.peek()["rollups.metrics_read"] == 1


def test_a_rule_in_minutes_is_judged_from_the_raw_series(make_settings, tmp_path):
    """``mirage_resolution = 60``: the day is read from the raw series in minutes (no
    rollups needed), so a one-point spike late in a 10-minute bucket, which that
    bucket's mean dilutes sixty-fold, is confirmed."""
    conf = CONF + ('[[alerts]]\npattern = "minute"\nchannel = "slack"\nexpiration = 3600\n'
                   "mirage_hours = 24\nmirage_resolution = 60\n")  # fmt: skip
    settings = pipeline_settings(make_settings, tmp_path, conf, SKYLINE__MIRAGE__INTERVAL="0.1")
    end = bucket_end(470)  # 470 s into a 10-minute bucket, 50 s into a minute
    ts = end - 10 * np.arange(8641)[::-1]
    values = 100 + np.random.default_rng(8).normal(0, 2, len(ts))
    values[-1] = 400.0
    with running(Mirage(settings)) as mirage:
        mirage.store.append_grouped({"minute.orders": (ts.tolist(), values.tolist())})
        mirage.redis.xadd(mirage.keys.mirage_stream(),
                          anomaly("minute.orders", ts=end, value=400.0).to_fields())  # fmt: skip
        wait_for(lambda: alerts(mirage.redis, mirage.keys))
        counts = mirage.counters.peek()
    verdict = verdicts(mirage.redis, mirage.keys)[-1]
    assert verdict.reason.startswith("anomalous over 24 h at 60 s:"), verdict.reason
    assert verdict.detail["source"] == "raw" and verdict.detail["window_points"] == 1440
    assert counts["history_source.raw"] == counts["confirmed"] == 1
