"""``GET /metrics``: Skyline's health in the Prometheus exposition format, scraped by a
real Prometheus (Debian's ``prometheus``, installed by .ci/run) with an API token."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from skyline.db import make_engine
from skyline.webapp import users
from tests.conftest import free_port, wait_for
from tests.integration.test_vista_prometheus import Server
from tests.integration.test_webapp_http import (  # noqa: F401
    Browser,
    app_env,
    seed,
    webapp_settings,
)
from tests.peers import require

PROMETHEUS = shutil.which("prometheus")


def _record_health(settings, daemon) -> None:
    """What horizon, analyzer and the streams hold while Skyline runs."""
    keys, r = daemon.keys, daemon.redis
    interval = settings.skyline.counters_interval
    r.set(keys.heartbeat("horizon"), json.dumps({"pid": 1, "ts": time.time(), "runs": 12,
                                                  "run_time": 0.25}), ex=60)  # fmt: skip
    r.hset(keys.counters("horizon"), mapping={"datapoints_accepted": repr(30.0 * interval),
                                              "errors": "0.0"})  # fmt: skip
    r.set(keys.heartbeat("analyzer"), json.dumps({"pid": 2, "ts": time.time(), "runs": 7,
                                                   "run_time": 0.125}), ex=60)  # fmt: skip
    for i in range(4):
        r.xadd(keys.anomalies_stream(), {"n": str(i)})
    r.xgroup_create(keys.anomalies_stream(), "panorama", id="0")
    r.xreadgroup("panorama", "p1", {keys.anomalies_stream(): ">"}, count=1)


def _families(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_exposition_needs_a_token_and_says_what_skyline_does(app_env):  # noqa: F811
    settings, daemon, base, _ = app_env
    _record_health(settings, daemon)
    prometheus_accept = {"Accept": "application/openmetrics-text;version=1.0.0,application/"
                         "openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,"
                         "*/*;q=0.1"}  # fmt: skip
    assert requests.get(base + "/metrics", headers=prometheus_accept, timeout=10).status_code == 401
    # the same path is the Metrics page for a browser
    page = requests.get(base + "/metrics", headers={"Accept": "text/html"}, timeout=10,
                        allow_redirects=False)  # fmt: skip
    assert page.status_code == 302 and "/login" in page.headers["Location"]
    browser = Browser(base)
    browser.login()
    assert (
        "text/html"
        in browser.get(base + "/metrics", headers={"Accept": "text/html"}).headers["Content-Type"]
    )
    assert browser.get(base + "/metrics", headers=prometheus_accept).text.startswith("# HELP")
    bad = requests.get(base + "/metrics", headers={"Authorization": "Bearer nope"}, timeout=10)
    assert bad.status_code == 401 and "revoked" in bad.json()["error"]
    token = users.create_token(make_engine(settings.database_url), "admin", "prometheus")
    r = requests.get(base + "/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith(
        "text/plain; version=0.0.4"
    )
    got = _families(r.text)
    assert got[("skyline_daemon_up", (("daemon", "horizon"),))] == 1.0
    assert got[("skyline_daemon_up", (("daemon", "boundary"),))] == 0.0
    assert got[("skyline_daemon_runs_total", (("daemon", "analyzer"),))] == 7.0
    assert got[("skyline_daemon_run_seconds", (("daemon", "analyzer"),))] == 0.125
    assert got[("skyline_ingest_datapoints_per_second", (("daemon", "horizon"),))] == 30.0
    assert got[("skyline_daemon_counter", (("counter", "errors"), ("daemon", "horizon")))] == 0.0
    assert got[("skyline_stream_length", (("stream", "anomalies"),))] == 4.0
    assert got[("skyline_stream_pending", (("group", "panorama"), ("stream", "anomalies")))] == 1.0
    assert got[("skyline_stream_lag", (("group", "panorama"), ("stream", "anomalies")))] == 3.0
    # seed() recorded one delivered Slack alert in the alert log
    assert (
        got[("skyline_alert_deliveries_total", (("channel", "slack"), ("status", "sent")))] == 1.0
    )


def _query(prom: Server, expr: str) -> list[dict]:
    r = requests.get(prom.url + "/api/v1/query", params={"query": expr}, timeout=10)
    return r.json()["data"]["result"] if r.ok else []


def test_a_real_prometheus_scrapes_it(make_settings, tmp_path: Path) -> None:
    if PROMETHEUS is None:
        require("prometheus", "apt-get install prometheus")
    from tests.integration.test_webapp_http import running_webapp

    settings = webapp_settings(make_settings, tmp_path)
    with running_webapp(settings) as (daemon, base):
        seed(settings, daemon.store)
        _record_health(settings, daemon)
        token = users.create_token(make_engine(settings.database_url), "admin", "prometheus")
        conf = tmp_path / "prometheus.yml"
        conf.write_text(f"""
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: skyline
    authorization:
      credentials: {token}
    static_configs:
      - targets: ["{base.removeprefix("http://")}"]
""")
        port = free_port()
        prom = Server([PROMETHEUS, f"--config.file={conf}", f"--storage.tsdb.path={tmp_path / 'data'}",
                       f"--web.listen-address=127.0.0.1:{port}"], port, tmp_path / "prom.log")  # fmt: skip
        prom.start()
        try:
            wait_for(lambda: _query(prom, 'skyline_daemon_up{daemon="horizon"}'), timeout=60,
                     interval=0.5)  # fmt: skip
            [up] = _query(prom, 'up{job="skyline"}')
            assert up["value"][1] == "1"
            [rate] = _query(prom, "skyline_ingest_datapoints_per_second")
            assert float(rate["value"][1]) == 30.0
            [sent] = _query(prom, 'skyline_alert_deliveries_total{channel="slack"}')
            assert sent["metric"]["status"] == "sent" and sent["value"][1] == "1"
            [length] = _query(prom, 'skyline_stream_length{stream="anomalies"}')
            assert length["value"][1] == "4"
        finally:
            prom.stop()


@pytest.mark.parametrize("header", ["Bearer ", "Basic YWRtaW46eA==", "Bearer " + "x" * 5000])
def test_hostile_authorization_is_401(app_env, header):  # noqa: F811
    _, _, base, _ = app_env
    headers = {"Authorization": header, "Accept": "text/plain;version=0.0.4"}
    r = requests.get(base + "/metrics", headers=headers, timeout=10, allow_redirects=False)
    assert r.status_code == 401 and r.json()["error"]
