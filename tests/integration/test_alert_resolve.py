"""Marking an anomaly resolved resolves the PagerDuty incident it opened (Events API v2
``resolve`` with the trigger's dedup_key), from the webapp's API and from the CLI, against
the project's real local PagerDuty fake; and alert links follow the webapp's port."""

from __future__ import annotations

import argparse

import requests
from sqlalchemy import select
from sqlalchemy.orm import Session

from skyline.alerting.channels.pagerduty import dedup_key
from skyline.cli import pipeline as cli_pipeline
from skyline.db import make_engine
from skyline.db.models import AlertLog, AnomalyVerdict
from skyline.settings import load_settings
from skyline.webapp import users
from tests.conftest import free_port
from tests.integration.fake_services import fake_pagerduty
from tests.integration.pipeline_fixtures import pipeline_settings
from tests.integration.test_webapp_http import ADMIN_PASSWORD, running_webapp, seed

ROUTING_KEY = "R0UTINGKEY0000000000000000000000"


def _settings(make_settings, tmp_path, pd):
    conf = (f'[alerters]\ntimeout = 2.0\n[alerters.pagerduty]\nrouting_key = "{ROUTING_KEY}"\n'
            f'url = "{pd.url}/v2/enqueue"\n')  # fmt: skip
    return pipeline_settings(make_settings, tmp_path, conf, **{
        "SKYLINE__WEBAPP__HTTP_SERVER": "threaded", "SKYLINE__WEBAPP__PORT": str(free_port()),
        "SKYLINE__WEBAPP__ADMIN_PASSWORD": ADMIN_PASSWORD})  # fmt: skip


def _alerted_on_pagerduty(settings, anomaly_id: int) -> None:
    engine = make_engine(settings.database_url)
    with Session(engine) as db:
        row = db.scalars(select(AlertLog).where(AlertLog.anomaly_id == anomaly_id)).one()
        db.add(AlertLog(event_id=row.event_id, anomaly_id=anomaly_id, metric_id=row.metric_id,
                        channel="pagerduty", rule_pattern="web.*", status="sent"))  # fmt: skip
        db.commit()


def _trail(settings, anomaly_id: int) -> list[tuple[str, str]]:
    with Session(make_engine(settings.database_url)) as db:
        rows = db.scalars(select(AnomalyVerdict).where(AnomalyVerdict.anomaly_id == anomaly_id))
        return [(v.stage, v.verdict) for v in rows]


def test_resolving_an_anomaly_resolves_its_pagerduty_incident(make_settings, tmp_path):
    pd = fake_pagerduty()
    settings = _settings(make_settings, tmp_path, pd)
    assert settings.alerters.pagerduty.routing_key.get_secret_value() == ROUTING_KEY
    try:
        with running_webapp(settings) as (daemon, base):
            ids = seed(settings, daemon.store)
            _alerted_on_pagerduty(settings, ids["a0"])
            engine = make_engine(settings.database_url)
            users.add_user(engine, "vic", "a long password", "viewer")
            viewer = users.create_token(engine, "vic", "t")
            admin = users.create_token(engine, "admin", "t")
            url = f"{base}/api/v1/anomalies/{ids['a0']}/resolve"
            denied = requests.post(url, headers={"Authorization": f"Bearer {viewer}"}, timeout=10)
            assert denied.status_code == 403 and pd.on("/v2/enqueue") == []
            r = requests.post(url, headers={"Authorization": f"Bearer {admin}"}, timeout=10)
            assert r.status_code == 200, r.text
            assert r.json() == {"anomaly_id": ids["a0"], "channels": {"pagerduty": "resolved"}}
            [sent] = pd.on("/v2/enqueue")
            body = sent.json()
            assert body == {"event_action": "resolve", "dedup_key": dedup_key("web.latency"),
                            "routing_key": ROUTING_KEY}  # fmt: skip
            assert ("operator", "resolved") in _trail(settings, ids["a0"])
            # an anomaly never sent to PagerDuty: resolved, nothing sent
            other = requests.post(f"{base}/api/v1/anomalies/{ids['a2']}/resolve",
                                  headers={"Authorization": f"Bearer {admin}"}, timeout=10)  # fmt: skip
            assert other.json()["channels"] == {} and len(pd.on("/v2/enqueue")) == 1
            missing = requests.post(f"{base}/api/v1/anomalies/999999/resolve",
                                    headers={"Authorization": f"Bearer {admin}"}, timeout=10)  # fmt: skip
            assert missing.status_code == 404
            # PagerDuty failing: the anomaly is resolved here, the failure said and logged
            pd.fail("api_permanent", 30)
            failed = requests.post(url, headers={"Authorization": f"Bearer {admin}"}, timeout=10)
            assert failed.json()["channels"]["pagerduty"].startswith("failed: ")
            with Session(engine) as db:
                statuses = [r.status for r in db.scalars(select(AlertLog).where(
                    AlertLog.anomaly_id == ids["a0"], AlertLog.channel == "pagerduty"))]  # fmt: skip
            assert statuses == ["sent", "resolved", "failed"]
    finally:
        pd.close()


def test_cli_alerts_resolve_anomaly(make_settings, tmp_path, capsys):
    pd = fake_pagerduty()
    settings = _settings(make_settings, tmp_path, pd)
    try:
        with running_webapp(settings) as (daemon, _):
            ids = seed(settings, daemon.store)
        _alerted_on_pagerduty(settings, ids["a0"])
        parser = argparse.ArgumentParser()
        cli_pipeline.register(parser.add_subparsers(dest="command"))
        args = parser.parse_args(["alerts", "resolve", "--anomaly", str(ids["a0"])])
        assert cli_pipeline.cmd_alerts(args, settings) == 0
        out = capsys.readouterr().out
        assert f"anomaly {ids['a0']} resolved" in out and "pagerduty  resolved" in out
        assert pd.on("/v2/enqueue")[0].json()["event_action"] == "resolve"
        nosuch = parser.parse_args(["alerts", "resolve", "--anomaly", "424242"])
        assert cli_pipeline.cmd_alerts(nosuch, settings) == 1
        assert "no anomaly with id 424242" in capsys.readouterr().err
    finally:
        pd.close()


def test_alert_links_follow_the_webapp_port(tmp_path):
    """With no [alerters] webapp_url, links use [webapp] url, else bind and (moved) port."""
    moved = load_settings(env={"SKYLINE__SKYLINE__VAR_DIR": str(tmp_path),
                               "SKYLINE__WEBAPP__PORT": "41500"})  # fmt: skip
    assert moved.webapp_base_url == "http://127.0.0.1:41500"
    proxied = load_settings(env={"SKYLINE__SKYLINE__VAR_DIR": str(tmp_path),
                                 "SKYLINE__WEBAPP__URL": "https://sky.example/"})  # fmt: skip
    assert proxied.webapp_base_url == "https://sky.example"
