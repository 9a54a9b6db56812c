"""Thunder's failing-channel event goes to the other channels, never the failing one."""

from __future__ import annotations

from skyline.alerting.thunder.channels import (
    EXPIRATION,
    channel_failing_event,
    failing_channel,
    remaining_channels,
)
from skyline.settings.alerting import AlertRule

RULES = [
    AlertRule(pattern="web", channel="slack", expiration=600),
    AlertRule(pattern="db", channel="pagerduty", expiration=900),
    AlertRule(pattern="web", channel="ops@example.com", expiration=60),
]


def test_the_event_names_its_channel():
    event = channel_failing_event("webhook-ops", since=1000.0, host="h1", duration=300)
    assert event.metric == "skyline.thunder.alerters.webhook-ops.failing"
    assert event.source == "thunder" and event.host == "h1" and event.value > 0
    assert failing_channel(event.metric) == "webhook-ops"
    assert failing_channel("skyline.thunder.analyzer.down") is None


def test_every_other_channel_when_no_rule_matches():
    r = remaining_channels(RULES, "skyline.thunder.alerters.slack.failing", "slack")
    assert [c for c, _, _ in r.channels] == ["pagerduty", "ops@example.com"]
    assert {e for _, e, _ in r.channels} == {EXPIRATION}


def test_matching_rules_decide_but_never_the_failing_channel():
    rules = [*RULES, AlertRule(pattern="skyline.thunder", channel="slack"),
             AlertRule(pattern="skyline.thunder", channel="pagerduty")]  # fmt: skip
    r = remaining_channels(rules, "skyline.thunder.alerters.slack.failing", "slack")
    assert [c for c, _, _ in r.channels] == ["pagerduty"]
