"""End to end with mirage: analyzer, mirage, panorama, alerters and the webapp in
threads, Slack a local stand-in, SQL on SQLite and MariaDB.  Two metrics get a new
point that the analyzer flags over its 24 h: a level shift (mirage confirms it over
7 days: one Slack alert) and a daily peak (mirage clears it: no alert).  Panorama
records both verdict trails and the webapp's API shows them."""

from __future__ import annotations

import time
from contextlib import ExitStack

import requests
from sqlalchemy import select
from sqlalchemy.orm import Session

from skyline.alerting.agent import Alerters
from skyline.analysis.analyzer.agent import Analyzer
from skyline.analysis.mirage.agent import Mirage
from skyline.db import make_engine
from skyline.db.models import Anomaly
from skyline.events.anomaly import read_all
from skyline.events.panorama.agent import Panorama
from skyline.webapp import users
from skyline.webapp.agent import Webapp
from tests.conftest import free_port, wait_for
from tests.integration import conftest_db
from tests.integration.fake_services import fake_slack
from tests.integration.pipeline_fixtures import pipeline_settings, running
from tests.integration.test_mirage import RES, daily_peak, history_of_days, level_shift


def events(daemon):
    return read_all(daemon.redis, daemon.keys)


db_url = conftest_db.db_url  # on SQLite and on MariaDB (a fresh database each)
mysql_url = conftest_db.mysql_url


def test_mirage_confirms_a_shift_clears_a_daily_peak_one_alert(make_settings, tmp_path, db_url):
    slack = fake_slack()
    conf = f"""
[alerters]
retry_backoff = 0.2
[alerters.slack]
token = "xoxb-e2e"
channel = "C0SKY"
base_url = "{slack.url}/api/"
[[alerts]]
pattern = "shop"
channel = "slack"
expiration = 3600
mirage_hours = 168
"""
    settings = pipeline_settings(make_settings, tmp_path, conf,
                                 SKYLINE__ANALYZER__ARRIVAL_INTERVAL="0.05",
                                 SKYLINE__ANALYZER__INTERVAL="3600",
                                 SKYLINE__MIRAGE__INTERVAL="0.1",
                                 SKYLINE__PANORAMA__INTERVAL="0.2",
                                 SKYLINE__ALERTERS__INTERVAL="0.2",
                                 SKYLINE__WEBAPP__HTTP_SERVER="threaded",
                                 SKYLINE__WEBAPP__PORT=str(free_port()),
                                 SKYLINE__DATABASE__URL=db_url)  # fmt: skip
    now = int(time.time())
    end = now - now % RES  # the new points start a bucket, so mirage's last bucket is theirs
    shift = now - end  # the analyzer runs as if just after `end` (its stale check)
    try:
        with ExitStack() as stack:
            stack.enter_context(running(Panorama(settings)))
            stack.enter_context(running(Alerters(settings)))
            mirage = stack.enter_context(running(Mirage(settings)))
            webapp = stack.enter_context(running(Webapp(settings), ready="http"))
            wait_for(lambda: mirage.redis.exists(mirage.keys.heartbeat("mirage")))
            store = mirage.store
            shifted, peaked = level_shift(), daily_peak()
            history_of_days(store, "shop.orders", shifted[:-3], end - 60)
            history_of_days(store, "shop.visits", peaked[:-1], end - 60)
            analyzer = stack.enter_context(running(
                Analyzer(settings, clock=lambda: time.time() - shift + 1), ready="options"))  # fmt: skip
            store.append_grouped({"shop.orders": ([end], [float(shifted[-1])]),
                                  "shop.visits": ([end], [float(peaked[-1])])}, changed=True)  # fmt: skip
            engine = make_engine(settings.database_url)

            def final() -> list[str]:
                with Session(engine) as db:
                    return sorted(db.scalars(select(Anomaly.verdict)).all())

            wait_for(lambda: slack.on("/api/chat.postMessage"), timeout=30)
            wait_for(lambda: final() == ["alerted", "not_anomalous"], timeout=30)
            assert analyzer.counters.peek()["total_anomalies"] == 2
            token = users.create_token(engine, "admin", "e2e")
            api = requests.Session()
            api.headers["Authorization"] = f"Bearer {token}"
            base = f"http://127.0.0.1:{webapp.port}/api/v1/anomalies/"
            ids = {e.metric: e.id for e in events(mirage)}
            orders = api.get(base + ids["shop.orders"]).json()
            visits = api.get(base + ids["shop.visits"]).json()
        assert len(slack.on("/api/chat.postMessage")) == 1
        assert "shop.orders" in slack.on("/api/chat.postMessage")[0].body.decode()
        assert [(v["stage"], v["verdict"]) for v in orders["verdicts"]] == [
            ("analyzer", "sent_to_mirage"), ("mirage", "sent_to_alerters"),
            ("alerters", "alerted")]  # fmt: skip
        assert orders["verdicts"][1]["reason"].startswith("anomalous over 168 h at 600 s")
        assert [(v["stage"], v["verdict"]) for v in visits["verdicts"]] == [
            ("analyzer", "sent_to_mirage"), ("mirage", "not_anomalous")]  # fmt: skip
        assert visits["verdicts"][1]["reason"].startswith("recurs daily: 7 similar peaks")
        assert visits["verdict"] == "not_anomalous" and orders["verdict"] == "alerted"
    finally:
        slack.close()
