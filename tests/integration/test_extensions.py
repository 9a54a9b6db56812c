"""Extension points: an alert channel and an ingest protocol added as one file each.

The files are fixtures (tests/fixtures/extensions/), put on the extension package's
path as if dropped into it; nothing else is edited: the settings, the docs, the
alerters' delivery and horizon's listeners pick them up from the registries.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from skyline.alerting.agent import Alerters
from skyline.events.anomaly import publish
from skyline.registry import Registry
from skyline.runtime.control import listener_ports
from skyline.settings import SettingsError, doc, model
from tests.conftest import wait_for
from tests.integration.horizon_fixtures import horizon_env, running_horizon, send_tcp
from tests.integration.horizon_fixtures import wait_for_points as wait_for_stored
from tests.integration.pipeline_fixtures import anomaly, pipeline_settings, running
from tests.integration.test_alerting import alert_rows

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "extensions"


def add_extension(monkeypatch: pytest.MonkeyPatch, package: str, registry: str,
                  folder: str, module: str) -> None:  # fmt: skip
    """Put ``FIXTURES/folder`` on ``package``'s path, look for modules again and rebuild
    the settings models; everything is undone at the end of the test."""
    pkg = importlib.import_module(package)
    reg: Registry = getattr(pkg, registry)
    monkeypatch.setattr(pkg, "__path__", [*pkg.__path__, str(FIXTURES / folder)])
    monkeypatch.setattr(reg, "_items", dict(reg._items))  # restored: the fixture unregistered
    for mod, attr in model.REBUILT:
        monkeypatch.setattr(importlib.import_module(mod), attr, getattr(sys.modules[mod], attr))
    monkeypatch.delitem(sys.modules, f"{package}.{module}", raising=False)
    reg.reload()
    assert module in {m.rsplit(".", 1)[-1] for m in sys.modules if m.startswith(package + ".")}
    model.rebuild()


@pytest.fixture
def logfile_channel(monkeypatch) -> Iterator[None]:
    add_extension(monkeypatch, "skyline.alerting.channels", "CHANNELS", "channels", "logfile")
    yield
    sys.modules.pop("skyline.alerting.channels.logfile", None)


@pytest.fixture
def json_protocol(monkeypatch) -> Iterator[None]:
    add_extension(monkeypatch, "skyline.ingest.horizon.protocols", "PROTOCOLS", "protocols",
                  "json_lines")  # fmt: skip
    yield
    sys.modules.pop("skyline.ingest.horizon.protocols.json_lines", None)


def logfile_conf(path: Path, channel: str = "logfile", extra: str = "") -> str:
    return (f'[alerters.logfile]\npath = "{path}"\n{extra}\n'
            f'[[alerts]]\npattern = "web.latency"\nchannel = "{channel}"\nexpiration = 600\n')  # fmt: skip


def test_a_channel_file_adds_its_settings_table_and_docs(logfile_channel, make_settings,
                                                         tmp_path):  # fmt: skip
    conf = tmp_path / "skyline.conf"
    conf.write_text(logfile_conf(tmp_path / "alerts.jsonl"))
    settings = make_settings(conf)
    assert settings.alerters.logfile.path == str(tmp_path / "alerts.jsonl")
    assert settings.alerts[0].channel == "logfile"
    assert settings.boundary_daemon.channel_limits["logfile"].limit == 60
    # its table is checked like any other
    conf.write_text(logfile_conf(tmp_path / "a", extra="colour = 1"))
    with pytest.raises(SettingsError, match=r"\[alerters\] logfile.colour: unknown key"):
        make_settings(conf)
    # and so is a rule's channel name, the new channel among those offered
    conf.write_text(logfile_conf(tmp_path / "a", channel="logfiles"))
    with pytest.raises(SettingsError, match="unknown channel 'logfiles'.*logfile"):
        make_settings(conf)
    assert "\n## `[alerters.logfile]`\n" in doc.render_markdown()
    assert '| `path` | `""` | path | File the alerts are appended to' in doc.render_markdown()
    assert "\n[alerters.logfile]\n" in doc.render_template()


def test_without_the_file_the_channel_is_unknown(make_settings, tmp_path):
    conf = tmp_path / "skyline.conf"
    conf.write_text(logfile_conf(tmp_path / "alerts.jsonl"))
    with pytest.raises(SettingsError, match="unknown key"):
        make_settings(conf)


def test_a_rule_naming_the_new_channel_delivers_through_the_alerters(
    logfile_channel, make_settings, tmp_path, redis_client
):
    out = tmp_path / "alerts.jsonl"
    settings = pipeline_settings(make_settings, tmp_path, logfile_conf(out),
                                 SKYLINE__ALERTERS__INTERVAL="0.2")  # fmt: skip
    event = anomaly()
    with running(Alerters(settings)) as d:
        publish(redis_client, d.keys, event, 1000, stream=d.keys.alerts_stream())
        rows = wait_for(lambda: [r for r in alert_rows(settings) if r.status == "sent"] or None)
    assert [(r.channel, r.rule_pattern, r.attempt) for r in rows] == [("logfile", "web.latency", 1)]
    line = json.loads(out.read_text())
    assert line["id"] == event.id and line["metric"] == "web.latency" and line["value"] == 500.0
    assert line["link"].endswith(f"/anomaly/{event.id}")


def test_a_protocol_file_adds_its_port_and_lands_datapoints(json_protocol, make_settings):
    from tests.conftest import free_port

    port = free_port()
    settings = make_settings(**horizon_env(SKYLINE__HORIZON__JSON_PORT=str(port)))
    assert settings.horizon.json_port == port
    assert ("horizon", "json_port", 1) in listener_ports(settings)["horizon"]  # SOCK_STREAM
    assert "| `json_port` | `2026` | port | JSON lines {metric, timestamp, value}, TCP. |" in (
        doc.render_markdown()
    )
    ts = int(time.time()) - 10
    with running_horizon(settings) as horizon:
        assert horizon.listeners.ports["json_port"] == port
        send_tcp(port, b'not json\n{"metric": "ext.json", "timestamp": %d, "value": 4.5}\n' % ts)
        series = wait_for_stored(horizon, "ext.json", 1)
    assert list(series.timestamps) == [ts] and list(series.values) == [4.5]
