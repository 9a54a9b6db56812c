"""The delivery matrix: every channel against local servers that fail, for a short
outage, in each form an outage takes; then they recover.  A transient form must end in
exactly one delivery after the outage, a permanent one in none with its reason recorded.

Each case runs one channel worker (the alerters' delivery unit: retry policy, durable
progress in Redis, the channel itself) with sub-second backoffs; the daemon around it
is tested in test_alert_delivery_daemon.py.  docs/alerts.md shows this matrix.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

import pytest
import redis
from pydantic import SecretStr

from skyline.alerting.base import Alert
from skyline.alerting.channels import make_channel
from skyline.alerting.channels.pagerduty import PagerDutyChannel
from skyline.alerting.channels.slack import SlackChannel
from skyline.alerting.channels.smtp import SmtpChannel
from skyline.alerting.channels.syslog import SyslogChannel
from skyline.alerting.channels.webhook import WebhookChannel
from skyline.alerting.delivery import ChannelWorker, Job
from skyline.alerting.pending import Delivery
from skyline.alerting.retry import RetryPolicy
from skyline.runtime.daemon import Counters
from skyline.settings.alerting import AlertersSection
from skyline.store.keys import RedisKeys
from tests.conftest import fail_once, wait_for
from tests.integration.fake_outages import FailingSmtp, FakeSyslogTcp
from tests.integration.fake_services import FakeHttp, fake_pagerduty, fake_slack
from tests.integration.pipeline_fixtures import anomaly

# seconds: stands in for the 20 s outage of the issue (SKYLINE_TEST_OUTAGE=20 runs that)
OUTAGE = float(os.environ.get("SKYLINE_TEST_OUTAGE", "0.3"))
TIMEOUT = 0.25  # one attempt's timeout; a hang lasts longer
HTTP_TRANSIENT = ["text500", "html500", "502", "503", "429", "refused", "hang", "malformed",
                  "api_transient"]  # fmt: skip
UPLOAD = {"/api/files.getUploadURLExternal", "/upload/F0PNG", "/api/files.completeUploadExternal"}
POST = {"slack": "/api/chat.postMessage", "pagerduty": "/v2/enqueue", "webhook-ops": "/hook"}
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


@dataclass
class Outcome:
    status: str = ""
    attempts: list[tuple[int, str, str | None]] = field(default_factory=list)


def settings(url: str, smtp_port: int = 25, syslog: str = "127.0.0.1:514") -> AlertersSection:
    return AlertersSection(
        timeout=TIMEOUT, retry_backoff=0.05, retry_backoff_max=0.2, give_up_after=30.0,
        smtp=SmtpChannel(host="127.0.0.1", port=smtp_port, recipients=["sre@example.com"]),
        slack=SlackChannel(token=SecretStr("xoxb-test"), channel="#skyline", base_url=f"{url}/api/"),
        pagerduty=PagerDutyChannel(routing_key=SecretStr("R" * 32), url=f"{url}/v2/enqueue"),
        syslog=SyslogChannel(address=syslog, transport="tcp"),
        webhooks={"ops": WebhookChannel(url=f"{url}/hook")},
    )  # fmt: skip


def deliver(redis_client, cfg: AlertersSection, channel: str, graph: bytes | None = None,
            before=None, record_fails: int = 0, counters: Counters | None = None,
            patch=None) -> tuple[Outcome, Delivery]:  # fmt: skip
    """One alert through one channel worker until it is sent or failed; the first
    ``record_fails`` reports of an attempt raise (a forced bug); ``patch(delivery)``
    may force other failures."""
    event = anomaly()
    alert = Alert(event, channel, "web", 3600, "http://skyline.example/anomaly/1", graph)
    delivery = Delivery(redis_client, RedisKeys("sky:"), channel, event.id, 5.0)
    policy = RetryPolicy.of(cfg, channel)
    delivery.open(time.time(), policy.give_up_after)
    if patch:
        patch(delivery)
    out, stop = Outcome(), threading.Event()

    def record(job: Job, n: int, status: str, error: str | None) -> None:
        out.attempts.append((n, status, error))
        if len(out.attempts) <= record_fails:
            raise RuntimeError("a bug in recording the attempt")

    worker = ChannelWorker(
        make_channel(channel, cfg), policy, stop=stop, record=record,
        done=lambda job, status: setattr(out, "status", status),
        failing_after=3600, on_failing=lambda *a: None, counters=counters or Counters(),
    )  # fmt: skip
    if before:
        before()
    worker.start()
    worker.jobs.put(Job("stream", b"1-0", alert, delivery))
    try:
        wait_for(lambda: out.status, timeout=20 + 2 * OUTAGE)
        assert worker.is_alive()
    finally:
        stop.set()
        worker.join(5)
    return out, delivery


@pytest.fixture
def http_fakes():
    fakes = {"slack": fake_slack(), "pagerduty": fake_pagerduty(), "webhook-ops": FakeHttp()}
    yield fakes
    for f in fakes.values():
        f.close()


def retried(out: Outcome) -> int:
    return sum(1 for _, status, _ in out.attempts if status == "retrying")


@pytest.mark.parametrize("channel", ["slack", "pagerduty", "webhook-ops"])
@pytest.mark.parametrize("form", ["ok", *HTTP_TRANSIENT])
def test_http_channel_delivers_once_after_a_transient_outage(
    redis_client, http_fakes, channel, form
):
    fake = http_fakes[channel]
    cfg = settings(fake.url)
    before = None if form == "ok" else (lambda: fake.fail(form, OUTAGE, hang=TIMEOUT + 0.3))
    out, _ = deliver(redis_client, cfg, channel, before=before)
    assert out.status == "sent", out.attempts
    webhook_body_ignored = channel == "webhook-ops" and form == "malformed"
    if webhook_body_ignored:  # the receiver answered 200: one request, one delivery
        assert len(fake.on(POST[channel])) == 1 and retried(out) == 0
        return
    assert fake.delivered(POST[channel]) == 1, f"{form}: delivered {fake.delivered(POST[channel])}x"
    if form != "ok":
        assert retried(out) >= 1, f"{form} was not retried: {out.attempts}"


def test_a_bug_around_an_attempt_neither_ends_the_worker_nor_sends_twice(redis_client,
                                                                            http_fakes, caplog):  # fmt: skip
    """Reporting the sent attempt raises (a bug, forced): the worker logs and counts it,
    keeps the alert, and its next look finds the delivery already sent: one message,
    the outcome reported, the worker still running."""
    fake, counters = http_fakes["webhook-ops"], Counters()
    out, delivery = deliver(redis_client, settings(fake.url), "webhook-ops", record_fails=1,
                            counters=counters)  # fmt: skip
    assert out.status == "sent" and delivery.status == "sent"
    assert fake.delivered(POST["webhook-ops"]) == 1 and counters.peek()["errors"] == 1
    assert "a bug in recording the attempt" in caplog.text


@pytest.mark.parametrize("exc", [RuntimeError("a bug in finishing"),
                                 redis.ConnectionError("Redis away")])  # fmt: skip
def test_a_sent_alert_whose_bookkeeping_fails_is_not_sent_again(redis_client, http_fakes,
                                                                 monkeypatch, exc):  # fmt: skip
    """The message went out, then writing the delivery's status raised (a bug, or
    Redis going away): the next look writes the outcome without sending again."""
    fake = http_fakes["webhook-ops"]
    out, delivery = deliver(redis_client, settings(fake.url), "webhook-ops",
                            patch=lambda d: fail_once(monkeypatch, d, "finish", exc))  # fmt: skip
    assert out.status == "sent" and delivery.status == "sent"
    assert fake.delivered(POST["webhook-ops"]) == 1 and len(fake.on(POST["webhook-ops"])) == 1
    assert [status for _, status, _ in out.attempts] == ["sent"]


def test_a_bug_before_every_send_gives_up_at_the_deadline(redis_client, http_fakes):
    """Starting an attempt always raises (a bug): nothing is sent, and once the
    delivery's deadline has passed the alert is recorded failed, with the reason."""
    fake, counters = http_fakes["webhook-ops"], Counters()
    cfg = settings(fake.url).model_copy(update={"give_up_after": 1.0})

    def broken(d: Delivery) -> None:
        def begin_attempt() -> int:
            raise RuntimeError("a bug in starting")

        d.begin_attempt = begin_attempt  # type: ignore[method-assign]

    out, delivery = deliver(redis_client, cfg, "webhook-ops", counters=counters, patch=broken)
    assert out.status == "failed" and delivery.status == "failed"
    assert len(fake.on(POST["webhook-ops"])) == 0 and counters.peek()["errors"] >= 2
    assert "gave up after a bug: RuntimeError: a bug in starting" in delivery.error


@pytest.mark.parametrize("channel", ["slack", "pagerduty", "webhook-ops"])
def test_http_channel_permanent_error_is_not_retried(redis_client, http_fakes, channel):
    fake = http_fakes[channel]
    fake.fail("api_permanent", 60)
    out, delivery = deliver(redis_client, settings(fake.url), channel)
    assert out.status == "failed" and retried(out) == 0
    assert fake.delivered(POST[channel]) == 0 and len(fake.on(POST[channel])) == 1
    assert delivery.error.startswith("permanent: ")
    expected = {"slack": "channel_not_found", "pagerduty": "HTTP 400", "webhook-ops": "HTTP 410"}
    assert expected[channel] in out.attempts[-1][2]


@pytest.mark.parametrize("form", ["text500", "503", "hang", "malformed", "api_transient"])
def test_slack_graph_upload_failure_does_not_post_the_message_twice(redis_client, http_fakes, form):
    fake = http_fakes["slack"]
    before = lambda: fake.fail(form, OUTAGE, paths=UPLOAD, hang=TIMEOUT + 0.3)  # noqa: E731
    out, delivery = deliver(redis_client, settings(fake.url), "slack", graph=PNG, before=before)
    assert out.status == "sent" and retried(out) >= 1
    assert fake.delivered("/api/chat.postMessage") == 1
    assert fake.delivered("/api/files.completeUploadExternal") == 1
    assert delivery.get("message_ts") == "1700000000.000100" and delivery.get("graph") == "F0PNG"
    complete = fake.on("/api/files.completeUploadExternal")[-1].body.decode()
    assert "1700000000.000100" in complete, "the graph goes into the message's thread"


def test_slack_graph_upload_permanent_failure_keeps_the_message(redis_client, http_fakes):
    fake = http_fakes["slack"]
    before = lambda: fake.fail("api_permanent", 60, paths={"/api/files.completeUploadExternal"})  # noqa: E731
    out, delivery = deliver(redis_client, settings(fake.url), "slack", graph=PNG, before=before)
    assert out.status == "sent" and fake.delivered("/api/chat.postMessage") == 1
    assert (
        "graph not attached" in out.attempts[-1][2] and "channel_not_found" in out.attempts[-1][2]
    )


def test_pagerduty_retry_sends_the_remembered_dedup_key(redis_client, http_fakes):
    fake = http_fakes["pagerduty"]
    out, delivery = deliver(redis_client, settings(fake.url), "pagerduty",
                            before=lambda: fake.fail("503", OUTAGE))  # fmt: skip
    keys = {r.json()["dedup_key"] for r in fake.on("/v2/enqueue")}
    assert out.status == "sent" and keys == {"skyline:web.latency"}
    assert delivery.get("dedup_key") == "skyline:web.latency"


@pytest.fixture
def smtp():
    server = FailingSmtp()
    yield server
    server.close()


@pytest.mark.parametrize("form", ["ok", "rcpt_450", "data_451", "refused", "hang"])
def test_email_delivers_once_after_a_transient_outage(redis_client, smtp, form):
    cfg = settings("http://127.0.0.1:9", smtp_port=smtp.port)
    before = None if form == "ok" else (lambda: smtp.fail(form, OUTAGE))
    out, delivery = deliver(redis_client, cfg, "smtp", before=before)
    assert out.status == "sent", out.attempts
    assert len(smtp.messages) == 1
    if form != "ok":
        assert retried(out) >= 1
    assert smtp.messages[0]["Message-ID"] == delivery.get("message_id"), (
        "every attempt sends the Message-ID made for the first"
    )


@pytest.mark.parametrize("form", ["rcpt_550", "data_554"])
def test_email_permanent_reply_is_not_retried(redis_client, smtp, form):
    smtp.fail(form, 60)
    out, delivery = deliver(
        redis_client, settings("http://127.0.0.1:9", smtp_port=smtp.port), "smtp"
    )
    assert out.status == "failed" and retried(out) == 0 and smtp.messages == []
    assert delivery.error.startswith("permanent: SMTP") and form[-3:] in delivery.error


@pytest.fixture
def syslog_tcp():
    server = FakeSyslogTcp()
    yield server
    server.close()


@pytest.mark.parametrize("form", ["ok", "refused", "hang"])
def test_syslog_tcp_delivers_once_after_an_outage(redis_client, syslog_tcp, form):
    cfg = settings("http://127.0.0.1:9", syslog=syslog_tcp.address)
    before = None if form == "ok" else (lambda: syslog_tcp.fail(form, OUTAGE))
    out, _ = deliver(redis_client, cfg, "syslog", before=before)
    assert out.status == "sent", out.attempts
    wait_for(lambda: syslog_tcp.lines)
    time.sleep(0.2)  # a second line would have arrived by now
    assert len(syslog_tcp.lines) == 1 and syslog_tcp.lines[0].startswith(
        b"<164>skyline: web.latency"
    )
    if form != "ok":
        assert retried(out) >= 1


def test_give_up_after_the_channel_deadline(redis_client, http_fakes):
    fake = http_fakes["webhook-ops"]
    fake.fail("503", 60)
    cfg = settings(fake.url).model_copy(update={"webhooks": {"ops": WebhookChannel(
        url=f"{fake.url}/hook", give_up_after=0.3)}})  # fmt: skip
    out, delivery = deliver(redis_client, cfg, "webhook-ops")
    assert out.status == "failed" and retried(out) >= 1
    assert "gave up after" in delivery.error and "HTTP 503" in delivery.error


@pytest.mark.parametrize("form", ["text500", "502", "429", "refused", "hang", "no_service"])
def test_slack_incoming_webhook_outages(redis_client, http_fakes, form):
    """Without a token Slack gets the incoming webhook: HTTP status decides alone."""
    fake = http_fakes["slack"]
    fake.api_errors["no_service"] = (404, {"error": "no_service"})
    hook = "/hooks/T0/B0/secret"
    cfg = settings(fake.url).model_copy(update={"slack": SlackChannel(
        webhook_url=SecretStr(f"{fake.url}{hook}"))})  # fmt: skip
    permanent = form == "no_service"
    before = lambda: fake.fail(form, 60 if permanent else OUTAGE, hang=TIMEOUT + 0.3)  # noqa: E731
    out, delivery = deliver(redis_client, cfg, "slack", before=before)
    if permanent:
        assert out.status == "failed" and fake.delivered(hook) == 0
        assert delivery.error.startswith("permanent: Slack webhook HTTP 404")
    else:
        assert out.status == "sent" and fake.delivered(hook) == 1 and retried(out) >= 1
