"""A database that stops answering without closing its connections (a frozen host, a
network black hole): a private MariaDB is frozen with SIGSTOP, then resumed.  Panorama,
the alerters and the webapp must not hang: they see an outage within ``[database] io_timeout``, and
after the resume everything recovers and nothing is lost (issue 15, item 8)."""

from __future__ import annotations

import time

import pytest
import requests
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from skyline.alerting.agent import Alerters
from skyline.db import make_engine, migrate
from skyline.db.models import Anomaly
from skyline.events.anomaly import publish
from skyline.events.panorama.agent import Panorama
from skyline.webapp import users
from tests.conftest import wait_for
from tests.integration import private_mariadb as mariadb_fixtures
from tests.integration import test_alerting as alerting
from tests.integration.pipeline_fixtures import anomaly, pipeline_settings, running
from tests.integration.private_mariadb import PrivateMariaDB
from tests.integration.test_webapp_http import running_webapp, webapp_settings

pytestmark = pytest.mark.mysql
private_mariadb = mariadb_fixtures.private_mariadb  # a server of the test's own
services = alerting.services  # fake Slack, PagerDuty, webhook, SMTP, syslog
TIMEOUTS = {"SKYLINE__DATABASE__IO_TIMEOUT": "2", "SKYLINE__DATABASE__CONNECT_TIMEOUT": "2",
            "SKYLINE__SKYLINE__RETRY_BACKOFF_MAX": "0.5"}  # fmt: skip


def stored(url: str) -> int:
    engine = make_engine(url)
    try:
        with Session(engine) as db:
            return db.scalar(select(func.count()).select_from(Anomaly)) or 0
    finally:
        engine.dispose()


def test_panorama_survives_a_frozen_database(make_settings, private_mariadb, redis_client):
    db: PrivateMariaDB = private_mariadb
    migrate.upgrade(db.url)
    settings = make_settings(SKYLINE__DATABASE__URL=db.url, SKYLINE__PANORAMA__INTERVAL="0.2",
                             **TIMEOUTS)  # fmt: skip
    t = int(time.time())
    with running(Panorama(settings)) as p:
        for k in range(3):
            publish(redis_client, p.keys, anomaly(f"before.{k}", ts=t), 1000)
        wait_for(lambda: stored(db.url) == 3)
        db.freeze()
        try:
            for k in range(3):
                publish(redis_client, p.keys, anomaly(f"during.{k}", ts=t), 1000)
            wait_for(lambda: p.counters.peek().get("outages", 0) >= 1, timeout=60)
        finally:
            db.thaw()
        wait_for(lambda: stored(db.url) == 6, timeout=60)
        wait_for(
            lambda: redis_client.xpending(p.keys.anomalies_stream(), "panorama")["pending"] == 0
        )


def test_the_webapp_answers_503_while_the_database_is_frozen(make_settings, tmp_path,
                                                            private_mariadb):  # fmt: skip
    db: PrivateMariaDB = private_mariadb
    settings = webapp_settings(make_settings, tmp_path, SKYLINE__DATABASE__URL=db.url, **TIMEOUTS)
    with running_webapp(settings) as (_, base):
        token = users.create_token(make_engine(settings.database_url), "admin", "t")
        auth = {"Authorization": f"Bearer {token}"}
        assert requests.get(base + "/api/v1/anomalies", headers=auth, timeout=30).status_code == 200
        db.freeze()
        try:
            r = requests.get(base + "/api/v1/anomalies", headers=auth, timeout=30)
            assert r.status_code == 503, r.text
        finally:
            db.thaw()
        wait_for(lambda: requests.get(base + "/api/v1/anomalies", headers=auth,
                                      timeout=30).status_code == 200, timeout=60)  # fmt: skip


WEBHOOK_RULE = '[[alerts]]\npattern = "web"\nchannel = "webhook-ops"\nexpiration = 3600\n'


def test_the_alerters_survive_a_frozen_database(make_settings, tmp_path, private_mariadb,
                                                services, redis_client):  # fmt: skip
    db: PrivateMariaDB = private_mariadb
    settings = pipeline_settings(
        make_settings, tmp_path, alerting.conf_for(services, WEBHOOK_RULE),
        SKYLINE__ALERTERS__INTERVAL="0.2", SKYLINE__DATABASE__URL=db.url, **TIMEOUTS,
    )  # fmt: skip

    def sent() -> set[str]:
        return {r.event_id for r in alerting.alert_rows(settings) if r.status == "sent"}

    with running(Alerters(settings)) as d:
        first, second = anomaly("web.before"), anomaly("web.during")
        publish(redis_client, d.keys, first, 1000, stream=d.keys.alerts_stream())
        wait_for(lambda: sent() == {first.id}, timeout=20)
        db.freeze()
        try:
            publish(redis_client, d.keys, second, 1000, stream=d.keys.alerts_stream())
            # delivered while SQL is frozen; its log row is queued, not waited for
            wait_for(lambda: len(services["webhook"].on("/hook")) == 2, timeout=60)
            wait_for(lambda: d.counters.peek().get("alert_log.queued", 0) >= 1, timeout=60)
        finally:
            db.thaw()
        wait_for(lambda: sent() == {first.id, second.id}, timeout=60)
        wait_for(lambda: redis_client.xpending(d.keys.alerts_stream(), "alerters")["pending"] == 0)
    assert len(services["webhook"].on("/hook")) == 2, "each alert delivered exactly once"
