"""End to end on real parts: datapoints in through horizon's line protocol, the analyzer
detects the spike, panorama stores the anomaly with its verdict trail, the alerters
deliver one Slack alert, a second anomaly within the expiration is suppressed, and the
webapp's API shows the anomaly, its trail and the series.  On a single Redis and on a
real Redis Cluster (3 masters, 3 replicas)."""

from __future__ import annotations

import time
from contextlib import ExitStack

import numpy as np
import pytest
import requests
from sqlalchemy import select
from sqlalchemy.orm import Session

from skyline.alerting.agent import Alerters
from skyline.analysis.analyzer.agent import Analyzer
from skyline.db import make_engine
from skyline.db.models import Anomaly
from skyline.events.panorama.agent import Panorama
from skyline.webapp import users
from skyline.webapp.agent import Webapp
from tests.conftest import free_port, wait_for
from tests.integration import conftest_db
from tests.integration.fake_services import fake_slack
from tests.integration.horizon_fixtures import horizon_env, running_horizon, send_tcp
from tests.integration.pipeline_fixtures import pipeline_settings, running

STEP = 60


db_url = conftest_db.db_url  # on SQLite and on MariaDB
mysql_url = conftest_db.mysql_url


@pytest.fixture(params=["redis", "cluster"])
def store_url(request: pytest.FixtureRequest) -> str:
    """The test's Redis DB, then the flushed session Redis Cluster."""
    return request.getfixturevalue("redis_url" if request.param == "redis" else "cluster_url")


def test_spike_in_horizon_to_one_slack_alert(make_settings, tmp_path, db_url, store_url):
    slack = fake_slack()
    conf = f"""
[alerters]
retry_backoff = 0.2
[alerters.slack]
token = "xoxb-e2e"
channel = "C0SKY"
base_url = "{slack.url}/api/"
[[alerts]]
pattern = "shop.checkout"
channel = "slack"
expiration = 3600
"""
    env = horizon_env(SKYLINE__HORIZON__MAX_AGE="86400")
    settings = pipeline_settings(make_settings, tmp_path, conf, **env,
                                 SKYLINE__ANALYZER__ARRIVAL_INTERVAL="0.05",
                                 SKYLINE__ANALYZER__INTERVAL="3600",
                                 SKYLINE__PANORAMA__INTERVAL="0.2",
                                 SKYLINE__ALERTERS__INTERVAL="0.2",
                                 SKYLINE__DATABASE__URL=db_url, SKYLINE__REDIS__URL=store_url,
                                 SKYLINE__WEBAPP__HTTP_SERVER="threaded",
                                 SKYLINE__WEBAPP__PORT=str(free_port()))  # fmt: skip
    try:
        with ExitStack() as stack:
            horizon = stack.enter_context(running_horizon(settings))
            analyzer = stack.enter_context(running(Analyzer(settings), ready="options"))
            stack.enter_context(running(Panorama(settings)))
            stack.enter_context(running(Alerters(settings)))
            webapp = stack.enter_context(running(Webapp(settings), ready="http"))
            # a day of normal history, then the live points through horizon
            end = int(time.time()) - 100 * STEP
            ts = end - STEP * np.arange(1440)[::-1]
            values = 50 + np.random.default_rng(11).normal(0, 2, 1440)
            analyzer.store.append_grouped({"shop.checkout": (ts.tolist(), values.tolist())})
            line_port = horizon.listeners.ports["line_port"]
            send_tcp(line_port, f"shop.checkout 900 {end + STEP}\n".encode())
            wait_for(lambda: slack.on("/api/chat.postMessage"), timeout=20)
            engine = make_engine(settings.database_url)

            def stored() -> list[Anomaly]:
                with Session(engine) as db:
                    return list(db.scalars(select(Anomaly).order_by(Anomaly.timestamp)))

            wait_for(lambda: [a for a in stored() if a.verdict == "alerted"], timeout=20)
            # a second anomaly 92 minutes later: recorded, but no second alert
            # (expiration); that late, because the detector reports one point per event
            # (a spike no higher than one of the previous 60-89 points repeats it and is
            # not a new anomaly)
            calm = [f"shop.checkout {50 + (k % 3)} {end + k * STEP}\n" for k in range(2, 93)]
            send_tcp(line_port, "".join(calm).encode())
            send_tcp(line_port, f"shop.checkout 1000000 {end + 93 * STEP}\n".encode())
            wait_for(lambda: analyzer.counters.peek().get("total_anomalies", 0) >= 2, timeout=20)
            wait_for(lambda: any(
                v.verdict == "suppressed" for v in _verdicts(analyzer)), timeout=20)  # fmt: skip
            spike = next(a for a in stored() if a.timestamp == end + STEP)
            _webapp_shows(webapp, engine, spike.id, end + STEP)
        assert len(slack.on("/api/chat.postMessage")) == 1
        text = slack.on("/api/chat.postMessage")[0].body.decode()
        assert "shop.checkout" in text and "900" in text
        with Session(engine) as db:
            first = db.scalars(select(Anomaly).where(Anomaly.timestamp == end + STEP)).one()
            assert first.value == 900.0 and first.source == "analyzer"
            trail = [(v.stage, v.verdict) for v in first.verdicts]
            assert trail == [("analyzer", "sent_to_alerters"), ("alerters", "alerted")]
    finally:
        slack.close()


def _webapp_shows(webapp: Webapp, engine, anomaly_id: int, spike_ts: int) -> None:
    """The webapp's API, on the same store and database, shows what the pipeline did."""
    base = f"http://127.0.0.1:{webapp.port}"
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {users.create_token(engine, 'admin', 'e2e')}"
    detail = api.get(f"{base}/api/v1/anomalies/{anomaly_id}", timeout=10).json()
    assert detail["metric"] == "shop.checkout" and detail["value"] == 900.0
    assert [v["stage"] for v in detail["verdicts"]] == ["analyzer", "alerters"]
    series = api.get(f"{base}/api/v1/metrics/shop.checkout", params={"from": "3h"}, timeout=10)
    assert [spike_ts, 900.0] in series.json()["data"]
    status = api.get(f"{base}/api/v1/status", timeout=10)
    assert status.status_code == 200, status.text


def _verdicts(analyzer):
    from skyline.events.anomaly import VerdictEvent

    return [
        VerdictEvent.from_fields(f)
        for _, f in analyzer.redis.xrange(analyzer.keys.verdicts_stream())
    ]
