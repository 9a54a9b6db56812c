"""Alerters and channels against real local servers: payloads as the real APIs document
them, retries, de-duplication, mutes, a crashed alerter's work delivered by the next."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from skyline.alerting import mutes
from skyline.alerting.agent import Alerters
from skyline.alerting.base import Alert, MemoryProgress
from skyline.alerting.channels.pagerduty import PagerDuty
from skyline.db import make_engine
from skyline.db.models import AlertLog
from skyline.events.anomaly import VerdictEvent, publish
from skyline.events.streams import StreamConsumer
from tests.conftest import wait_for
from tests.integration import conftest_db
from tests.integration.fake_services import (
    FakeHttp,
    FakeSmtp,
    FakeSyslog,
    fake_pagerduty,
    fake_slack,
)
from tests.integration.pipeline_fixtures import anomaly, pipeline_settings, running


@pytest.fixture
def services():
    slack, pd, hook, smtp, syslog = (
        fake_slack(),
        fake_pagerduty(),
        FakeHttp(),
        FakeSmtp(),
        FakeSyslog(),
    )
    yield {"slack": slack, "pagerduty": pd, "webhook": hook, "smtp": smtp, "syslog": syslog}
    for s in (slack, pd, hook, smtp, syslog):
        s.close()


def conf_for(s: dict, rules: str = "", extra: str = "") -> str:
    return f"""
[alerters]
attempts = 3
retry_backoff = 0.2
timeout = 1.0
claim_idle = 1
webapp_url = "http://skyline.example:1500"
[alerters.smtp]
host = "127.0.0.1"
port = {s["smtp"].port}
recipients = ["sre@example.com"]
[alerters.slack]
token = "xoxb-test-token"
channel = "#skyline"
base_url = "{s["slack"].url}/api/"
[alerters.pagerduty]
routing_key = "R0UTINGKEY0000000000000000000000"
url = "{s["pagerduty"].url}/v2/enqueue"
severity = "critical"
[alerters.syslog]
address = "{s["syslog"].address}"
[alerters.webhooks.ops]
url = "{s["webhook"].url}/hook"
secret = "s3cret"
headers = {{ "X-Team" = "sre" }}
{extra}
{
        rules
        or '''
[[alerts]]
pattern = "web"
channel = "slack"
expiration = 3600
[[alerts]]
pattern = "web.latency"
channel = "webhook-ops"
expiration = 3600
'''
    }
"""


db_url = conftest_db.db_url  # every test here runs on SQLite and on MariaDB
mysql_url = conftest_db.mysql_url


@pytest.fixture
def settings_for(make_settings, tmp_path, services, db_url):
    def make(rules: str = "", extra: str = "", **env: str):
        return pipeline_settings(make_settings, tmp_path, conf_for(services, rules, extra),
                                 SKYLINE__ALERTERS__INTERVAL="0.2", SKYLINE__DATABASE__URL=db_url,
                                 **env)  # fmt: skip

    return make


def seed_series(store, metric: str, ts: int) -> None:
    rng = np.random.default_rng(1)
    stamps = ts - 60 * np.arange(200)[::-1]
    values = 100 + rng.normal(0, 1, 200)
    values[-1] = 500.0
    store.append_grouped({metric: (stamps.tolist(), values.tolist())})


def alert_rows(settings) -> list[AlertLog]:
    with Session(make_engine(settings.database_url)) as db:
        return list(db.scalars(select(AlertLog).order_by(AlertLog.id)))


def verdicts(redis_client, keys) -> list[VerdictEvent]:
    return [VerdictEvent.from_fields(f) for _, f in redis_client.xrange(keys.verdicts_stream())]


def test_every_channel_sends_what_its_api_documents(settings_for, services, redis_client):
    rules = "".join(f'\n[[alerts]]\npattern = "web.latency"\nchannel = "{c}"\nexpiration = 600\n'
                    for c in ("smtp", "slack", "pagerduty", "syslog", "webhook-ops"))  # fmt: skip
    settings = settings_for(rules)
    with running(Alerters(settings)) as d:
        event = anomaly()
        seed_series(d.store, event.metric, event.timestamp)
        publish(redis_client, d.keys, event, 1000, stream=d.keys.alerts_stream())
        wait_for(lambda: sum(r.status == "sent" for r in alert_rows(settings)) == 5, timeout=20)
        wait_for(lambda: verdicts(redis_client, d.keys))
    # Slack: chat.postMessage with channel and text, then the graph via files_upload_v2
    post = services["slack"].on("/api/chat.postMessage")[0]
    assert post.headers["Authorization"] == "Bearer xoxb-test-token"
    body = post.json() if post.body.startswith(b"{") else post.form()
    assert body["channel"] == "#skyline" and "web.latency" in body["text"]
    assert "http://skyline.example:1500/anomaly/" in body["text"]
    upload = services["slack"].on("/upload/F0PNG")[0]
    assert upload.body.startswith(b"\x89PNG") or b"\x89PNG" in upload.body
    complete = services["slack"].on("/api/files.completeUploadExternal")[0]
    assert "C0SKY" in (complete.body.decode())
    # PagerDuty Events API v2
    pd = services["pagerduty"].on("/v2/enqueue")[0].json()
    assert pd["routing_key"] == "R0UTINGKEY0000000000000000000000"
    assert pd["event_action"] == "trigger" and pd["dedup_key"] == "skyline:web.latency"
    assert pd["payload"]["severity"] == "critical" and pd["payload"]["source"] == "testhost"
    assert "web.latency" in pd["payload"]["summary"]
    assert pd["payload"]["custom_details"]["value"] == 500.0
    # webhook: signed JSON with custom headers
    hook = services["webhook"].on("/hook")[0]
    expected = "sha256=" + hmac.new(b"s3cret", hook.body, hashlib.sha256).hexdigest()
    assert hook.headers["X-Skyline-Signature"] == expected
    assert hook.headers["X-Team"] == "sre" and hook.headers["X-Skyline-Event-Id"] == event.id
    alert = hook.json()["data"]["alert"]
    assert alert["metric"] == "web.latency" and alert["value"] == 500.0 and alert["id"] == event.id
    assert alert["triggered_algorithms"] == list(event.triggered) and alert["expiry"] == 600
    # email: HTML with the graph inline and a link
    msg = services["smtp"].messages[0]
    assert msg["To"] == "sre@example.com" and "web.latency" in msg["Subject"]
    parts = {p.get_content_type(): p for p in msg.walk()}
    assert parts["image/png"].get_payload(decode=True).startswith(b"\x89PNG")
    assert "http://skyline.example:1500/anomaly/" in parts["text/html"].get_content()
    # syslog: <PRI>ident: message, facility local4 (20) severity warning (4) = 164
    line = services["syslog"].receive()
    assert line.startswith(b"<164>skyline: web.latency = 500.0")


def test_failures_are_retried_and_every_attempt_logged(settings_for, services, redis_client):
    services["webhook"].behaviour.fail_first = 2
    settings = settings_for()
    with running(Alerters(settings)) as d:
        publish(redis_client, d.keys, anomaly(), 1000, stream=d.keys.alerts_stream())
        wait_for(
            lambda: any(
                r.channel == "webhook-ops" and r.status == "sent" for r in alert_rows(settings)
            )
        )
    hook_rows = [(r.attempt, r.status) for r in alert_rows(settings) if r.channel == "webhook-ops"]
    assert hook_rows == [(1, "retrying"), (2, "retrying"), (3, "sent")]
    assert len(services["webhook"].on("/hook")) == 3


def test_timeouts_are_retried_then_recorded_as_failed(settings_for, services, redis_client):
    services["webhook"].behaviour.delay = 2.0  # longer than [alerters] timeout = 1 s
    settings = settings_for()
    with running(Alerters(settings)) as d:
        publish(redis_client, d.keys, anomaly(), 1000, stream=d.keys.alerts_stream())
        wait_for(lambda: [r for r in alert_rows(settings) if r.channel == "webhook-ops" and r.status == "failed"],
                 timeout=30)  # fmt: skip
        wait_for(lambda: any(v.stage == "alerters" for v in verdicts(redis_client, d.keys)))
    rows = [r for r in alert_rows(settings) if r.channel == "webhook-ops"]
    assert [r.status for r in rows] == ["retrying", "retrying", "failed"]
    assert "Timeout" in rows[-1].error
    assert redis_client.get(d.keys.alert_sent("webhook-ops", "web.latency")) is None, (
        "a failed alert releases its dedupe key so the next anomaly can alert"
    )


def test_a_slow_channel_does_not_delay_another(settings_for, services, redis_client):
    services["webhook"].behaviour.delay = 0.9
    settings = settings_for(SKYLINE__ALERTERS__TIMEOUT="5")
    with running(Alerters(settings)) as d:
        publish(redis_client, d.keys, anomaly(), 1000, stream=d.keys.alerts_stream())
        wait_for(lambda: services["slack"].on("/api/chat.postMessage"))
        assert services["webhook"].on("/hook") == [] or len(alert_rows(settings)) < 2, (
            "slack was delivered while the webhook was still being answered"
        )
        wait_for(lambda: len([r for r in alert_rows(settings) if r.status == "sent"]) == 2)


def test_one_alert_per_channel_and_metric_per_expiration(settings_for, services, redis_client):
    settings = settings_for()
    with running(Alerters(settings)) as d:
        t = int(time.time())
        events = [anomaly(ts=t + 60 * k) for k in range(3)]
        for event in events:
            publish(redis_client, d.keys, event, 1000, stream=d.keys.alerts_stream())
        wait_for(
            lambda: len([v for v in verdicts(redis_client, d.keys) if v.stage == "alerters"]) == 3
        )
    assert len(services["slack"].on("/api/chat.postMessage")) == 1
    assert len(services["webhook"].on("/hook")) == 1
    outcome = {
        v.event_id: v.verdict for v in verdicts(redis_client, d.keys) if v.stage == "alerters"
    }
    assert [outcome[e.id] for e in events] == ["alerted", "suppressed", "suppressed"]
    assert sum(r.status == "suppressed" for r in alert_rows(settings)) == 4


def test_muted_metrics_do_not_alert(settings_for, services, redis_client):
    settings = settings_for()
    mutes.mute(make_engine(settings.database_url), "web", mutes.parse_duration("2h"), "maintenance")
    with running(Alerters(settings)) as d:
        publish(redis_client, d.keys, anomaly(), 1000, stream=d.keys.alerts_stream())
        wait_for(lambda: verdicts(redis_client, d.keys))
    assert verdicts(redis_client, d.keys)[0].verdict == "muted"
    assert services["slack"].requests == [] and services["webhook"].requests == []
    assert {r.status for r in alert_rows(settings)} == {"muted"}


def test_a_crashed_alerters_pending_alert_is_delivered_by_the_next(
    settings_for, services, redis_client
):
    settings = settings_for()
    d = Alerters(settings)
    event = anomaly()
    publish(redis_client, d.keys, event, 1000, stream=d.keys.alerts_stream())
    # a previous alerter read the alert and died before acknowledging it
    dead = StreamConsumer(redis_client, [d.keys.alerts_stream()], "alerters", "alerters-dead-1")
    assert len(dead.read(block_ms=100)) == 1
    assert redis_client.xpending(d.keys.alerts_stream(), "alerters")["pending"] == 1
    with running(d):
        wait_for(lambda: services["slack"].on("/api/chat.postMessage"), timeout=15)
        wait_for(lambda: redis_client.xpending(d.keys.alerts_stream(), "alerters")["pending"] == 0)
    assert len(services["slack"].on("/api/chat.postMessage")) == 1


def test_redelivery_after_a_crash_mid_delivery_does_not_alert_twice(
    settings_for, services, redis_client
):
    settings = settings_for()
    d = Alerters(settings)
    event = anomaly()
    # the dead alerter had claimed the dedupe key and finished slack before dying
    redis_client.set(d.keys.alert_sent("slack", event.metric), f"{event.id}|sent", ex=3600)
    redis_client.set(d.keys.alert_sent("webhook-ops", event.metric), event.id, ex=3600)
    publish(redis_client, d.keys, event, 1000, stream=d.keys.alerts_stream())
    with running(d):
        wait_for(lambda: services["webhook"].on("/hook"))
        wait_for(lambda: verdicts(redis_client, d.keys))
    assert services["slack"].on("/api/chat.postMessage") == []
    assert verdicts(redis_client, d.keys)[0].detail["channels"] == {
        "slack": "sent",
        "webhook-ops": "sent",
    }


def test_unconfigured_channel_fails_visibly(settings_for, services, redis_client):
    rules = '[[alerts]]\npattern = "web"\nchannel = "webhook-nosuch"\n'
    settings = settings_for(rules)
    with running(Alerters(settings)) as d:
        publish(redis_client, d.keys, anomaly(), 1000, stream=d.keys.alerts_stream())
        wait_for(lambda: verdicts(redis_client, d.keys))
    row = alert_rows(settings)[0]
    assert row.status == "failed" and "[alerters.webhooks.nosuch]" in row.error
    assert verdicts(redis_client, d.keys)[0].verdict == "failed"


def test_malformed_stream_entries_are_dropped(settings_for, redis_client):
    settings = settings_for()
    with running(Alerters(settings)) as d:
        redis_client.xadd(d.keys.alerts_stream(), {"event": "{broken"})
        redis_client.xadd(d.keys.alerts_stream(), {"nothing": "here"})
        wait_for(lambda: d.counters.peek().get("malformed_entries") == 2)
        wait_for(lambda: redis_client.xpending(d.keys.alerts_stream(), "alerters")["pending"] == 0)


def test_pagerduty_resolve(services):
    from skyline.alerting.channels.pagerduty import PagerDutyChannel

    pd = PagerDuty(
        PagerDutyChannel(routing_key="K" * 32, url=f"{services['pagerduty'].url}/v2/enqueue"), 2
    )
    pd.resolve("web.latency")
    body = services["pagerduty"].on("/v2/enqueue")[0].json()
    assert body == {
        "event_action": "resolve",
        "dedup_key": "skyline:web.latency",
        "routing_key": "K" * 32,
    }


def test_slack_incoming_webhook(services):
    from pydantic import SecretStr

    from skyline.alerting.channels.slack import Slack, SlackChannel

    hook_url = f"{services['slack'].url}/hooks/T0/B0/secret"
    Slack(SlackChannel(webhook_url=SecretStr(hook_url)), 2).send(
        Alert(anomaly(), "slack", "web", 60, "http://x/anomaly/1"), MemoryProgress()
    )
    body = json.loads(services["slack"].on("/hooks/T0/B0/secret")[0].body)
    assert "web.latency" in body["text"]


# Issue 15 item 9: an alert_log row that fails to write is retried, not dropped.
def test_alert_log_rows_survive_a_failing_database(settings_for, services, redis_client):
    from sqlalchemy import Engine, event
    from sqlalchemy.exc import OperationalError

    failures = {"left": 4}

    def fail_alert_log_inserts(conn, cursor, statement, params, context, executemany):
        if failures["left"] > 0 and statement.lstrip().upper().startswith("INSERT INTO ALERT_LOG"):
            failures["left"] -= 1  # only forces the failure: SQL "goes away" for these rows
            raise OperationalError(statement, params, ConnectionError("SQL went away"))

    services["webhook"].behaviour.fail_first = 2
    settings = settings_for()
    event.listen(Engine, "before_cursor_execute", fail_alert_log_inserts)
    try:
        with running(Alerters(settings)) as d:
            publish(redis_client, d.keys, anomaly(), 1000, stream=d.keys.alerts_stream())
            wait_for(lambda: sum(r.channel == "webhook-ops" for r in alert_rows(settings)) >= 3,
                     timeout=20)  # fmt: skip
            wait_for(lambda: redis_client.llen(d.keys.alert_log_outbox()) == 0)
            counts = d.counters.peek()
    finally:
        event.remove(Engine, "before_cursor_execute", fail_alert_log_inserts)
    hook_rows = [(r.attempt, r.status) for r in alert_rows(settings) if r.channel == "webhook-ops"]
    assert hook_rows == [(1, "retrying"), (2, "retrying"), (3, "sent")]
    assert failures["left"] == 0
    assert counts["alert_log.queued"] >= 1 and counts["alert_log.replayed"] >= 1
