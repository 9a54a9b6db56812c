"""The one retry policy: which failures are retried, how long to wait, when to give up."""

from __future__ import annotations

import email.utils
import smtplib

import pytest
from pydantic import SecretStr

from skyline.alerting.base import DeliveryError, PermanentError
from skyline.alerting.channels.slack import SlackChannel
from skyline.alerting.channels.smtp import _by_code
from skyline.alerting.channels.webhook import WebhookChannel
from skyline.alerting.retry import RetryPolicy, channel_deadline, http_error, retry_after
from skyline.events.anomaly import failed_channels, verdict_text
from skyline.settings.alerting import AlertersSection


@pytest.mark.parametrize(("status", "transient"), [(500, True), (502, True), (503, True),
                                                   (504, True), (429, True), (400, False),
                                                   (401, False), (404, False), (410, False)])  # fmt: skip
def test_http_statuses(status, transient):
    err = http_error("x", status, "<html>whatever the body</html>", {})
    assert isinstance(err, DeliveryError) and isinstance(err, PermanentError) is not transient


def test_retry_after_seconds_and_date():
    assert retry_after({"retry-after": "7"}) == 7.0
    date = email.utils.formatdate(1_000_030, usegmt=True)
    assert retry_after({"Retry-After": date}, now=1_000_000) == pytest.approx(30, abs=1)
    assert retry_after({"Retry-After": "soon"}) is None and retry_after(None) is None
    assert http_error("x", 429, "", {"Retry-After": "3"}).retry_after == 3.0


def test_backoff_doubles_with_jitter_up_to_the_cap_and_honours_retry_after():
    policy = RetryPolicy(backoff=1.0, backoff_max=8.0, give_up_after=3600)
    for attempt, full in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (10, 8.0), (500, 8.0)]:
        waits = [policy.delay(attempt) for _ in range(200)]
        assert all(full / 2 <= w <= full for w in waits) and len(set(waits)) > 1
    assert policy.delay(1, server_asked=20.0) == 20.0, "a longer Retry-After is honoured"


def test_give_up_at_the_deadline_or_the_attempt_cap():
    policy = RetryPolicy(1.0, 8.0, 60.0)
    assert not policy.exhausted(100, next_at=59.0, deadline=60.0)
    assert policy.exhausted(2, next_at=61.0, deadline=60.0)
    assert RetryPolicy(1.0, 8.0, 60.0, attempts=3).exhausted(3, next_at=1.0, deadline=60.0)


def test_deadline_per_channel():
    cfg = AlertersSection(give_up_after=3600.0, slack=SlackChannel(give_up_after=600.0),
                          webhooks={"ops": WebhookChannel(url="http://x", give_up_after=30.0)})  # fmt: skip
    assert channel_deadline(cfg, "slack") == 600.0
    assert channel_deadline(cfg, "webhook-ops") == 30.0
    assert channel_deadline(cfg, "pagerduty") == channel_deadline(cfg, "a@b.c") == 3600.0
    assert cfg.slack.token == SecretStr("")


def test_smtp_reply_codes():
    assert not isinstance(_by_code(451, "try later"), PermanentError)
    assert isinstance(_by_code(554, "rejected"), PermanentError)
    assert issubclass(smtplib.SMTPServerDisconnected, smtplib.SMTPException)


def test_verdict_text():
    detail = {"channels": {"slack": "failed", "webhook-ops": "sent", "smtp": "suppressed"}}
    assert failed_channels(detail) == ["slack"]
    assert verdict_text("alerted", ["slack"]) == "alerted (slack failed)"
    assert verdict_text("failed", ["pagerduty", "slack"]) == "failed (pagerduty, slack)"
    assert verdict_text("alerted", []) == "alerted" and failed_channels(None) == []
