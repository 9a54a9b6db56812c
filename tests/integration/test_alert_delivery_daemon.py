"""Delivery through the alerters daemon: a partial failure is visible in the verdict, the
UI and the CLI; a channel that keeps failing raises thunder's event on the others; an
alerter killed in the middle of a retry loses nothing and posts nothing twice."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from skyline.alerting.agent import Alerters
from skyline.cli.pipeline import cmd_anomalies
from skyline.db import make_engine
from skyline.db.models import Anomaly
from skyline.events.anomaly import publish, read_all
from skyline.events.panorama.agent import Panorama
from skyline.store.keys import RedisKeys
from skyline.webapp.agent import Webapp
from tests.conftest import free_port, wait_for
from tests.integration import test_alerting
from tests.integration.pipeline_fixtures import anomaly, running
from tests.integration.test_alerting import alert_rows, verdicts
from tests.integration.test_webapp_http import ADMIN_PASSWORD, Browser

# the fixtures of test_alerting: its fake services and settings, on SQLite and MariaDB
services = test_alerting.services
settings_for = test_alerting.settings_for
db_url = test_alerting.db_url
mysql_url = test_alerting.mysql_url

FAST = {"SKYLINE__ALERTERS__RETRY_BACKOFF": "0.05", "SKYLINE__ALERTERS__RETRY_BACKOFF_MAX": "0.2",
        "SKYLINE__ALERTERS__ATTEMPTS": "0", "SKYLINE__ALERTERS__TIMEOUT": "0.5"}  # fmt: skip


def alerters_verdict(redis_client, keys):
    return next((v for v in verdicts(redis_client, keys) if v.stage == "alerters"), None)


def test_a_partial_failure_is_visible_in_verdict_ui_and_cli(settings_for, services, redis_client,
                                                            capsys):  # fmt: skip
    services["slack"].fail("api_permanent", 60)  # channel_not_found: slack fails for good
    settings = settings_for(**FAST, SKYLINE__SKYLINE__COUNTERS_INTERVAL="1",
                            SKYLINE__WEBAPP__HTTP_SERVER="threaded",
                            SKYLINE__WEBAPP__PORT=str(free_port()),
                            SKYLINE__WEBAPP__ADMIN_PASSWORD=ADMIN_PASSWORD)  # fmt: skip
    event = anomaly()
    with running(Panorama(settings)) as p, running(Alerters(settings)) as d:
        publish(redis_client, p.keys, event, 1000)
        publish(redis_client, d.keys, event, 1000, stream=d.keys.alerts_stream())
        verdict = wait_for(lambda: alerters_verdict(redis_client, d.keys))
        engine = make_engine(settings.database_url)

        def stored() -> bool:
            with Session(engine) as db:
                return (
                    db.scalar(select(Anomaly.verdict).where(Anomaly.event_id == event.id))
                    == "alerted"
                )

        wait_for(stored)
        wait_for(
            lambda: d.redis.hget(d.keys.counters("alerters"), "channel.slack.failed"), timeout=5
        )
    assert verdict.verdict == "alerted" and verdict.reason == "slack failed"
    assert verdict.detail["channels"] == {"slack": "failed", "webhook-ops": "sent"}
    assert "channel_not_found" in verdict.detail["errors"]["slack"]
    # the CLI
    args = argparse.Namespace(since=0, metric=None, limit=10, json=True)
    assert cmd_anomalies(args, settings) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row["verdict"] == "alerted" and row["failed_channels"] == ["slack"]
    assert row["verdict_text"] == "alerted (slack failed)"
    assert cmd_anomalies(argparse.Namespace(**{**vars(args), "json": False}), settings) == 0
    assert capsys.readouterr().out.rstrip().endswith("alerted (slack failed)")
    # the Now, Anomalies and Anomaly pages, the API, and the channel counters on Status
    with running(Webapp(settings), ready="http") as web:
        b = Browser(f"http://127.0.0.1:{web.port}")
        assert b.login().status_code == 302
        for path in ("/now", "/anomalies", f"/anomaly/{event.id}"):
            page = b.get(b.url(path)).text
            assert "alerted (slack failed)" in page and "v-partial" in page, path
        api = b.get(b.url("/api/v1/anomalies")).json()
        assert "alerted (slack failed)" in json.dumps(api)
        status = b.get(b.url("/status")).text
    assert 'id="channels"' in status and "<td>slack</td>" in status


def test_a_channel_that_keeps_failing_raises_thunder_on_the_others(settings_for, services,
                                                                   redis_client):  # fmt: skip
    services["slack"].fail("503", 60)
    settings = settings_for(**FAST, SKYLINE__ALERTERS__CHANNEL_FAILING_AFTER="0.3")
    with running(Alerters(settings)) as d:
        publish(redis_client, d.keys, anomaly(), 1000, stream=d.keys.alerts_stream())

        def thunder() -> list:
            bodies = [r.json()["data"]["alert"] for r in services["webhook"].on("/hook")]
            return [a for a in bodies if a["metric"] == "skyline.thunder.alerters.slack.failing"]

        alarm = wait_for(thunder, timeout=15)
        assert d.counters.peek().get("channel.slack.failing_events") == 1
    assert alarm[0]["source"] == "thunder" and alarm[0]["channel"] == "webhook-ops"
    assert services["slack"].delivered("/api/chat.postMessage") == 0
    recorded = [e.metric for e in read_all(redis_client, d.keys)]
    assert "skyline.thunder.alerters.slack.failing" in recorded, "panorama records it too"


def _spawn_alerters(settings, tmp_path) -> subprocess.Popen:
    env = {**os.environ, "SKYLINE_CONF": str(tmp_path / "skyline.conf"),
           "SKYLINE__SKYLINE__VAR_DIR": str(settings.var_path),
           "SKYLINE__REDIS__URL": settings.redis.url,
           "SKYLINE__DATABASE__URL": settings.database_url,
           "SKYLINE__ALERTERS__INTERVAL": "0.2", "SKYLINE__ALERTERS__GRAPH": "false", **FAST}  # fmt: skip
    return subprocess.Popen([sys.executable, "-m", "skyline.alerting"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def test_killed_mid_retry_the_restarted_alerters_deliver_exactly_once(settings_for, services,
                                                                      redis_client, tmp_path):  # fmt: skip
    rules = '[[alerts]]\npattern = "web"\nchannel = "webhook-ops"\nexpiration = 3600\n'
    settings = settings_for(rules, **FAST, SKYLINE__ALERTERS__GRAPH="false")
    hook = services["webhook"]
    hook.fail("503", 120)
    event = anomaly()
    proc = _spawn_alerters(settings, tmp_path)
    try:
        keys = RedisKeys(settings.redis.prefix)
        publish(redis_client, keys, event, 1000, stream=keys.alerts_stream())
        wait_for(lambda: sum(r.status == "retrying" for r in alert_rows(settings)) >= 2, timeout=30)
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # no flush, no goodbye: the retry loop just ends
        proc.wait(10)
    before = max(r.attempt for r in alert_rows(settings))
    hook.outage = None  # the outage ends while no alerter runs
    with running(Alerters(settings)) as d:
        wait_for(lambda: any(r.status == "sent" for r in alert_rows(settings)), timeout=30)
        wait_for(lambda: alerters_verdict(redis_client, d.keys))
        wait_for(lambda: redis_client.xpending(d.keys.alerts_stream(), "alerters")["pending"] == 0)
    assert hook.delivered("/hook") == 1
    sent = next(r for r in alert_rows(settings) if r.status == "sent")
    assert sent.attempt > before, "the attempt count went on from the killed alerter's"
    assert alerters_verdict(redis_client, d.keys).verdict == "alerted"


def test_alerts_still_flow_while_another_retries_after_a_failed_pass(settings_for, services,
                                                                     redis_client):  # fmt: skip
    """A failed pass re-reads the alerter's own pending entries; the ones still retrying
    must not hide the new alerts behind them."""
    rules = ('[[alerts]]\npattern = "web"\nchannel = "webhook-ops"\n'
             '[[alerts]]\npattern = "db"\nchannel = "slack"\n')  # fmt: skip
    services["webhook"].fail("503", 60)
    settings = settings_for(rules, **FAST, SKYLINE__ALERTERS__GRAPH="false")
    with running(Alerters(settings)) as d:
        publish(redis_client, d.keys, anomaly(), 1000, stream=d.keys.alerts_stream())
        wait_for(lambda: any(r.status == "retrying" for r in alert_rows(settings)))
        d.consumer.recover()  # as after an exception in a pass
        time.sleep(0.5)  # let the passes that were under way end: the next reads re-read
        publish(
            redis_client, d.keys, anomaly("db.connections"), 1000, stream=d.keys.alerts_stream()
        )
        wait_for(lambda: services["slack"].delivered("/api/chat.postMessage") == 1, timeout=10)


def test_a_delivery_recorded_sent_is_not_sent_again_after_a_crash(settings_for, services,
                                                                  redis_client):  # fmt: skip
    """The crash came after the delivery was recorded sent in Redis but before the
    dedupe key was marked and the stream entry acknowledged."""
    rules = '[[alerts]]\npattern = "web"\nchannel = "webhook-ops"\nexpiration = 3600\n'
    settings = settings_for(rules, **FAST)
    keys = RedisKeys(settings.redis.prefix)
    event = anomaly()
    redis_client.set(keys.alert_sent("webhook-ops", event.metric), event.id, ex=3600)
    redis_client.hset(keys.alert_delivery("webhook-ops", event.id),
                      mapping={"status": "sent", "attempt": 2, "deadline": 9e9})  # fmt: skip
    publish(redis_client, keys, event, 1000, stream=keys.alerts_stream())
    with running(Alerters(settings)) as d:
        verdict = wait_for(lambda: alerters_verdict(redis_client, d.keys))
    assert services["webhook"].requests == [] and verdict.verdict == "alerted"
    assert (
        redis_client.get(keys.alert_sent("webhook-ops", event.metric))
        == f"{event.id}|sent".encode()
    )
