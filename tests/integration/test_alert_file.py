"""The file channel: alerts appended as JSON lines, through the real alerters daemon,
one whole line per alert when many processes append at once, and a path that cannot
be written is retried, then recorded as failed."""

from __future__ import annotations

import json
import math
import multiprocessing
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from skyline.alerting.agent import Alerters
from skyline.alerting.base import Alert, DeliveryError, MemoryProgress, PermanentError
from skyline.alerting.channels import make_channel
from skyline.alerting.channels.file import File, FileChannel
from skyline.db import make_engine
from skyline.db.models import AlertLog
from skyline.events.anomaly import publish
from skyline.settings import load_settings
from tests.conftest import wait_for
from tests.integration.pipeline_fixtures import anomaly, pipeline_settings, running


def rules(path: Path) -> str:
    return f'[alerters.file]\npath = "{path}"\n[[alerts]]\npattern = "web"\nchannel = "file"\n'


def alert_rows(settings) -> list[AlertLog]:
    with Session(make_engine(settings.database_url)) as db:
        return list(db.scalars(select(AlertLog).order_by(AlertLog.id)))


def test_the_alerters_append_one_json_line_per_alert(make_settings, tmp_path, redis_client):
    path = tmp_path / "deep" / "alerts.jsonl"  # its directory does not exist yet
    settings = pipeline_settings(make_settings, tmp_path, rules(path),
                                 SKYLINE__ALERTERS__INTERVAL="0.2")  # fmt: skip
    first, second = anomaly("web.latency", value=500.0), anomaly("web.errors", value=7.5)
    with running(Alerters(settings)) as d:
        for event in (first, second):
            publish(redis_client, d.keys, event, 1000, stream=d.keys.alerts_stream())
        wait_for(lambda: sum(r.status == "sent" for r in alert_rows(settings)) == 2, timeout=20)
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert sorted(x["metric"] for x in lines) == ["web.errors", "web.latency"]
    got = next(x for x in lines if x["metric"] == "web.latency")
    assert got["anomaly"] == first.id and got["value"] == 500.0 and got["rule"] == "web"
    assert got["link"].endswith(f"/anomaly/{first.id}") and got["source"] == "analyzer"
    assert set(got["triggered"]) == set(first.triggered) and "web.latency = 500.0" in got["summary"]


def test_the_default_path_is_relative_to_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings(env={"SKYLINE__SKYLINE__VAR_DIR": str(tmp_path / "var")})
    channel = make_channel("file", settings.alerters)
    assert isinstance(channel, File) and channel.path == tmp_path / "var/log/alerts.jsonl"


def test_scores_that_json_cannot_hold_are_left_out(tmp_path):
    event = replace(anomaly(), scores={"grubbs": math.nan, "ks_test": 2.5})
    path = tmp_path / "a.jsonl"
    File(FileChannel(path=str(path)), clock=lambda: 0.0).send(
        Alert(event, "file", "web", 60, "http://x/anomaly/1"), MemoryProgress()
    )
    line = json.loads(path.read_text())  # strict JSON: no NaN
    assert line["scores"] == {"ks_test": 2.5} and line["delivered_at"].startswith("1970-01-01")


def _append(path: str, n: int, tag: int) -> None:
    channel = File(FileChannel(path=path))
    for i in range(n):
        event = anomaly(f"web.p{tag}.{'x' * 900}", ts=1_700_000_000 + i)  # long lines
        channel.send(Alert(event, "file", "web", 60, "http://x"), MemoryProgress())


def test_concurrent_appends_never_interleave(tmp_path):
    path = tmp_path / "alerts.jsonl"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append, args=(str(path), 150, k)) for k in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    lines = path.read_text().splitlines()
    assert len(lines) == 600
    assert {json.loads(x)["metric"][:7] for x in lines} == {f"web.p{k}." for k in range(4)}


def test_an_unwritable_path_is_retried_then_failed(make_settings, tmp_path, redis_client):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the directory should be")
    path = blocker / "alerts.jsonl"
    with pytest.raises(DeliveryError) as err:
        File(FileChannel(path=str(path))).send(
            Alert(anomaly(), "file", "web", 60, "http://x"), MemoryProgress()
        )
    assert not isinstance(err.value, PermanentError) and str(blocker) in str(err.value)
    settings = pipeline_settings(make_settings, tmp_path, rules(path),
                                 SKYLINE__ALERTERS__INTERVAL="0.2",
                                 SKYLINE__ALERTERS__RETRY_BACKOFF="0.1",
                                 SKYLINE__ALERTERS__GIVE_UP_AFTER="0.5")  # fmt: skip
    with running(Alerters(settings)) as d:
        publish(redis_client, d.keys, anomaly(), 1000, stream=d.keys.alerts_stream())
        wait_for(lambda: any(r.status == "failed" for r in alert_rows(settings)), timeout=20)
    rows = alert_rows(settings)
    assert len(rows) >= 2 and rows[-1].status == "failed" and "not-a-dir" in rows[-1].error


def test_an_empty_path_is_refused_at_start(tmp_path):
    conf = tmp_path / "skyline.conf"
    conf.write_text('[alerters.file]\npath = ""\n')
    with pytest.raises(Exception, match="path"):
        load_settings(conf, env={})
