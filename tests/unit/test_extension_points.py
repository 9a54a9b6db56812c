"""The registries of alert channels and ingest protocols, and what is derived from them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from skyline.alerting.channels import CHANNELS, find, make_channel, wants_graph
from skyline.alerting.channels.smtp import Smtp
from skyline.alerting.channels.webhook import Webhook, WebhookChannel
from skyline.ingest.horizon.protocols import PROTOCOLS, by_port
from skyline.settings import AlertersSection, AlertRule, BoundaryRule, HorizonSection

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def compose_ports(service: str) -> list[str]:
    """The ``ports: [...]`` of one service of docker-compose.yml."""
    text = COMPOSE.read_text()
    block = re.search(rf"^  {service}:\n((?:    .*\n|\n)*)", text, re.MULTILINE)
    assert block, f"no service {service} in {COMPOSE}"
    ports = re.search(r"^    ports: \[(.*)\]$", block.group(1), re.MULTILINE)
    assert ports, f"service {service} publishes no ports"
    return re.findall(r'"([^"]+)"', ports.group(1))


def test_docker_compose_publishes_every_horizon_protocol_port():
    expected = [f"{s.default_port}:{s.default_port}" + ("/udp" if s.transport == "udp" else "")
                for s in by_port()]  # fmt: skip
    assert compose_ports("horizon") == expected, "update horizon's ports in docker-compose.yml"


def test_horizon_has_one_port_key_per_protocol():
    assert {"line", "pickle", "udp"} <= set(PROTOCOLS.names())
    for spec in by_port():
        field = HorizonSection.model_fields[spec.port_key]
        assert field.default == spec.default_port and field.description == spec.doc


def test_alerters_has_one_table_per_channel():
    assert set(CHANNELS.names()) == {"file", "pagerduty", "slack", "smtp", "syslog", "webhook"}
    for _, spec in CHANNELS.items():
        field = AlertersSection.model_fields[spec.table_name]
        assert field.annotation == (dict[str, spec.settings] if spec.named else spec.settings)


@pytest.mark.parametrize(
    ("name", "channel"),
    [("smtp", "smtp"), ("ops@example.com", "smtp"), ("slack", "slack"),
     ("pagerduty", "pagerduty"), ("syslog", "syslog"), ("webhook-ops", "webhook"),
     ("file", "file")],
)  # fmt: skip
def test_rule_names_find_their_channel(name, channel):
    spec = find(name)
    assert spec is not None and spec.name == channel
    assert AlertRule(pattern="a", channel=name).channel == name
    assert BoundaryRule(pattern="a", algorithm="less_than", channels=[name]).channels == [name]


@pytest.mark.parametrize("name", ["teams", "webhook-", "smtp2", "a@b@c"])
def test_unknown_channel_names_are_refused_naming_the_known_ones(name):
    assert find(name) is None
    with pytest.raises(ValueError, match=f"unknown channel '{re.escape(name)}': use file, pagerduty, "
                       "slack, smtp, syslog, webhook-NAME or an email address"):  # fmt: skip
        AlertRule(pattern="a", channel=name)


def test_make_channel_builds_from_the_registry():
    cfg = AlertersSection(webhooks={"ops": WebhookChannel(url="http://127.0.0.1:9/hook")})
    email = make_channel("ops@example.com", cfg)
    assert isinstance(email, Smtp) and email.recipients == ["ops@example.com"]
    assert isinstance(make_channel("webhook-ops", cfg), Webhook)
    missing = make_channel("webhook-dev", cfg)
    assert type(missing).__name__ == "Unconfigured" and "[alerters.webhooks.dev]" in missing.reason
    assert wants_graph("slack") and wants_graph("a@b.c") and not wants_graph("webhook-ops")


@pytest.mark.parametrize("example", ["channels/logfile.py", "protocols/json_lines.py"])
def test_docs_show_the_worked_examples_the_tests_use(example):
    root = Path(__file__).resolve().parents[2]
    source = (root / "tests" / "fixtures" / "extensions" / example).read_text().rstrip()
    assert f"```python\n{source}\n```" in (root / "docs" / "extending.md").read_text()
