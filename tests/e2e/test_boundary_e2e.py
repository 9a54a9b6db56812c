"""End to end on real parts: datapoints written as horizon writes them, the boundary
daemon, panorama (SQLite and MariaDB) and the alerters with a real HTTP Slack stand-in:
one anomaly row with source boundary and one Slack alert; a channel's rate limit
drops the alert past it with a counted, logged rate_limited outcome; a greater_than
and a less_than alert of one metric do not suppress each other."""

from __future__ import annotations

import time
from contextlib import ExitStack, contextmanager
from types import SimpleNamespace

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from skyline.alerting.agent import Alerters
from skyline.analysis.boundary.agent import Boundary
from skyline.db import make_engine
from skyline.db.models import AlertLog, Anomaly
from skyline.events.panorama.agent import Panorama
from tests.conftest import wait_for
from tests.integration import conftest_db
from tests.integration.fake_services import fake_slack
from tests.integration.pipeline_fixtures import pipeline_settings, running

STEP = 60

db_url = conftest_db.db_url  # on SQLite and on MariaDB
mysql_url = conftest_db.mysql_url


def conf(slack_url: str, rules: str, extra: str = "") -> str:
    return f"""
[boundary_daemon]
interval = 0.05
metrics_refresh = 0.2
{extra}
[alerters]
retry_backoff = 0.2
graph = false
[alerters.slack]
token = "xoxb-e2e"
channel = "C0SKY"
base_url = "{slack_url}/api/"
{rules}
"""


@contextmanager
def pipeline(make_settings, tmp_path, db_url, rules: str, extra: str = ""):
    slack = fake_slack()
    settings = pipeline_settings(make_settings, tmp_path, conf(slack.url, rules, extra),
                                 SKYLINE__PANORAMA__INTERVAL="0.2",
                                 SKYLINE__ALERTERS__INTERVAL="0.2",
                                 SKYLINE__DATABASE__URL=db_url)  # fmt: skip
    try:
        with ExitStack() as stack:
            panorama = stack.enter_context(running(Panorama(settings)))
            alerters = stack.enter_context(running(Alerters(settings)))
            boundary = stack.enter_context(running(Boundary(settings), ready="watched"))
            yield SimpleNamespace(settings=settings, slack=slack, boundary=boundary,
                                  alerters=alerters, panorama=panorama)  # fmt: skip
    finally:
        slack.close()


def feed(store, metric: str, ts, values) -> None:
    """Datapoints written as horizon writes them (append, metrics set, changed set)."""
    ts, values = np.atleast_1d(ts), np.atleast_1d(values)
    store.append_grouped({metric: (ts.tolist(), values.tolist())}, changed=True)


def judged_upto(boundary: Boundary, metric: str, ts: int) -> None:
    wait_for(lambda: (w := boundary.watched.get(metric)) and w.tail.last_judged == ts)


def anomalies(settings) -> list[Anomaly]:
    with Session(make_engine(settings.database_url)) as db:
        return list(db.scalars(select(Anomaly).order_by(Anomaly.timestamp)))


def alert_log(settings) -> list[AlertLog]:
    with Session(make_engine(settings.database_url)) as db:
        return list(db.scalars(select(AlertLog).order_by(AlertLog.id)))


def posts(slack) -> list[str]:
    return [r.body.decode() for r in slack.on("/api/chat.postMessage")]


def test_breaches_to_one_anomaly_row_and_one_slack_alert(make_settings, tmp_path, db_url):
    rules = """
[[boundary]]
pattern = "shop.checkout.errors"
algorithm = "greater_than"
limit = 20.0
alert_threshold = 2
expiry = 3600
channels = ["slack"]
"""
    metric = "shop.checkout.errors"
    end = int(time.time()) - 10 * STEP
    with pipeline(make_settings, tmp_path, db_url, rules) as p:
        settings, slack, boundary = p.settings, p.slack, p.boundary
        feed(boundary.store, metric, end - STEP * np.arange(60)[::-1], np.full(60, 3.0))
        judged_upto(boundary, metric, end)
        for i, value in enumerate((25.0, 31.0, 40.0), start=1):  # 3 breaches: alerts at 2, 3
            feed(boundary.store, metric, end + i * STEP, value)
            judged_upto(boundary, metric, end + i * STEP)
        wait_for(lambda: boundary.counters.peek().get("alerts") == 2)
        wait_for(lambda: [a for a in anomalies(settings) if a.verdict == "alerted"], timeout=20)
        wait_for(lambda: any(r.status == "suppressed" for r in alert_log(settings)), timeout=20)
        assert wait_for(lambda: p.panorama.counters.peek().get("repeats")) == 1
    with Session(make_engine(settings.database_url)) as db:
        (row,) = db.scalars(select(Anomaly))
        assert (row.source, row.timestamp, row.value) == ("boundary", end + 2 * STEP, 31.0)
        assert [(v.stage, v.verdict) for v in row.verdicts] == [
            ("boundary", "sent_to_alerters"), ("alerters", "alerted")]  # fmt: skip
    (text,) = posts(slack)
    assert metric in text and "greater_than" in text
    # the second alert's "suppressed" row may be written before the first's "sent" row
    # (delivery runs on a channel worker): compare them as a set
    statuses = sorted((r.channel, r.status) for r in alert_log(settings))
    assert statuses == [("slack", "sent"), ("slack", "suppressed")]


def test_rate_limit_drops_alerts_past_the_channel_limit(make_settings, tmp_path, db_url):
    rules = """
[[boundary]]
pattern = "^pool[0-9]\\\\.free$"
algorithm = "less_than"
limit = 10.0
channels = ["slack"]
"""
    extra = "[boundary_daemon.channel_limits.slack]\nlimit = 2\nperiod = 3600\n"
    end = int(time.time()) - 10 * STEP
    with pipeline(make_settings, tmp_path, db_url, rules, extra) as p:
        settings, slack, b, alerters = p.settings, p.slack, p.boundary, p.alerters
        for n in range(3):  # three metrics, each alerting once
            metric = f"pool{n}.free"
            feed(b.store, metric, end - STEP * np.arange(30)[::-1], np.full(30, 50.0))
            judged_upto(b, metric, end)
            feed(b.store, metric, end + STEP, 1.0)
        wait_for(lambda: len([r for r in alert_log(settings) if r.status != "retrying"]) >= 3,
                 timeout=20)  # fmt: skip
        wait_for(lambda: alerters.counters.peek().get("rate_limited") == 1)
        wait_for(lambda: len(posts(slack)) == 2, timeout=20)
        wait_for(lambda: sum(a.verdict in ("alerted", "rate_limited")
                             for a in anomalies(settings)) == 3, timeout=20)  # fmt: skip
    rows = alert_log(settings)
    assert sorted(r.status for r in rows) == ["rate_limited", "sent", "sent"]
    limited = next(r for r in rows if r.status == "rate_limited")
    assert limited.channel == "slack" and "rate limit" in limited.error
    assert sorted(a.verdict for a in anomalies(settings)) == ["alerted", "alerted", "rate_limited"]


def test_greater_than_and_less_than_alerts_do_not_suppress_each_other(
    make_settings, tmp_path, db_url
):
    rules = """
[[boundary]]
pattern = "dc1.temperature"
algorithm = "greater_than"
limit = 40.0
expiry = 3600
channels = ["slack"]
[[boundary]]
pattern = "dc1.temperature"
algorithm = "less_than"
limit = 5.0
expiry = 3600
channels = ["slack"]
"""
    metric = "dc1.temperature"
    end = int(time.time()) - 30 * STEP
    with pipeline(make_settings, tmp_path, db_url, rules) as p:
        settings, slack, boundary = p.settings, p.slack, p.boundary
        feed(boundary.store, metric, end - STEP * np.arange(30)[::-1], np.full(30, 20.0))
        judged_upto(boundary, metric, end)
        feed(boundary.store, metric, end + STEP, 45.0)
        wait_for(lambda: len(posts(slack)) == 1, timeout=20)
        feed(boundary.store, metric, end + 2 * STEP, 46.0)  # same algorithm: suppressed
        wait_for(lambda: any(r.status == "suppressed" for r in alert_log(settings)), timeout=20)
        feed(boundary.store, metric, end + 3 * STEP, 1.0)  # less_than: its own dedupe key
        wait_for(lambda: len(posts(slack)) == 2, timeout=20)
    first, second = posts(slack)
    assert "greater_than" in first and "less_than" in second
