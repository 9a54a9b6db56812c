"""The daemon runtime on real Redis and SQLite: loop, heartbeat, counters, outages, stop."""

from __future__ import annotations

import json
import logging
import threading

import pytest
import redis
import sqlalchemy

from skyline.runtime.daemon import Backoff, Counters, Daemon
from tests.conftest import wait_for


class Ticker(Daemon):
    name = "ticker"
    interval = 0.05  # type: ignore[assignment]

    def setup(self) -> None:
        self.flushed = False
        self.fail_next = 0

    def run_once(self) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise ValueError("a bug in run_once")
        self.counters.inc("ticks")

    def flush(self) -> None:
        self.flushed = True


def start_in_thread(daemon: Daemon) -> threading.Thread:
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def fast(make_settings):
    return make_settings(
        SKYLINE__SKYLINE__COUNTERS_INTERVAL="1",
        SKYLINE__SKYLINE__RETRY_BACKOFF_MAX="0.2",
        SKYLINE__SKYLINE__HOST="testhost",
    )


def test_heartbeat_counters_and_graceful_stop(fast, redis_client):
    d = Ticker(fast)
    thread = start_in_thread(d)
    beat = wait_for(lambda: redis_client.get(d.keys.heartbeat("ticker")))
    beat = json.loads(beat)
    assert beat["host"] == "testhost" and beat["runs"] >= 1
    assert 0 < redis_client.ttl(d.keys.heartbeat("ticker")) <= fast.skyline.heartbeat_ttl
    # counters become ordinary metrics skyline.<daemon>.<host>.<counter>
    wait_for(lambda: "skyline.ticker.testhost.ticks" in d.store.metrics(), timeout=5)
    assert d.store.read("skyline.ticker.testhost.ticks").values.sum() > 0
    # the hash is written just after the metric (Daemon.publish_counters): wait for it too
    wait_for(lambda: redis_client.hget(d.keys.counters("ticker"), "ticks") is not None, timeout=5)
    d.stop()
    thread.join(5)
    assert not thread.is_alive()
    assert d.flushed
    assert redis_client.get(d.keys.heartbeat("ticker")) is None


def test_a_failing_run_is_logged_counted_and_survived(fast, caplog):
    d = Ticker(fast)
    d.setup()
    d.setup = lambda: None  # keep fail_next set before the loop starts
    d.fail_next = 2
    with caplog.at_level(logging.ERROR, logger="skyline.ticker"):
        thread = start_in_thread(d)
        wait_for(lambda: d.runs >= 3)
        d.stop()
        thread.join(5)
    assert "run failed" in caplog.text and "a bug in run_once" in caplog.text
    assert d.fail_next == 0 and d.runs >= 3


def test_daemon_survives_a_redis_restart(make_settings, private_redis, caplog):
    settings = make_settings(
        SKYLINE__REDIS__URL=private_redis.url, SKYLINE__SKYLINE__RETRY_BACKOFF_MAX="0.3"
    )
    d = Ticker(settings)
    client = redis.Redis.from_url(private_redis.url)
    with caplog.at_level(logging.WARNING, logger="skyline.ticker"):
        thread = start_in_thread(d)
        wait_for(lambda: client.get(d.keys.heartbeat("ticker")))
        private_redis.stop()
        wait_for(lambda: "service unavailable" in caplog.text)
        runs_during_outage = d.runs
        private_redis.start()  # same port, empty data
        wait_for(lambda: client.get(d.keys.heartbeat("ticker")), timeout=15)
        wait_for(lambda: d.runs > runs_during_outage + 2)
        assert thread.is_alive()
        d.stop()
        thread.join(5)
    assert "run: service unavailable" in caplog.text


class NeedsSQL(Ticker):
    name = "needs_sql"

    def setup(self) -> None:
        super().setup()
        self.engine = sqlalchemy.create_engine(self.sql_url)
        with self.engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT 1"))


def test_daemon_waits_for_sql_unreachable_at_start(fast, tmp_path, caplog):
    """SQLite in a directory that does not exist yet: setup fails, retries, then succeeds."""
    db_dir = tmp_path / "later"
    d = NeedsSQL(fast)
    d.sql_url = f"sqlite:///{db_dir / 'x.db'}"
    with caplog.at_level(logging.WARNING, logger="skyline.needs_sql"):
        thread = start_in_thread(d)
        wait_for(lambda: caplog.text.count("setup: service unavailable") >= 2)
        assert d.runs == 0 and thread.is_alive()
        db_dir.mkdir()
        wait_for(lambda: d.runs >= 1)
        d.stop()
        thread.join(5)


class UsesDatabase(Ticker):
    name = "uses_db"

    def setup(self) -> None:
        super().setup()
        self.engine = self.open_database()


def test_daemon_refuses_an_out_of_date_schema_then_starts_once_upgraded(fast, capsys):
    from skyline.db import migrate

    d = UsesDatabase(fast)
    assert d.run() == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "skyline db upgrade" in err
    migrate.upgrade(fast.database_url)
    d = UsesDatabase(fast)
    thread = start_in_thread(d)
    wait_for(lambda: d.runs >= 1)
    d.stop()
    thread.join(5)


def test_stop_during_outage_exits_promptly(make_settings, private_redis):
    settings = make_settings(SKYLINE__REDIS__URL=private_redis.url)
    private_redis.stop()
    d = Ticker(settings)
    thread = start_in_thread(d)
    wait_for(lambda: d._backoff.current > 0)
    d.stop()
    thread.join(5)
    assert not thread.is_alive()


def test_backoff_doubles_to_its_cap_and_resets():
    b = Backoff(cap=3.0)
    assert [b.next() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    b.reset()
    assert b.next() == 0.5


def test_counters_reset_counts_but_keep_gauges():
    c = Counters()
    c.inc("a")
    c.inc("a", 2)
    c.gauge("g", 7)
    assert c.take() == {"a": 3, "g": 7}
    assert c.take() == {"g": 7}
