"""Labelled metrics through flux's Prometheus remote_write: the label index, the
dropMetrics / dropLabels headers (hostile ones too) and Debian's real prometheus."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from skyline.settings.selector import parse
from skyline.store.labels import LabelIndex
from tests.conftest import free_port, wait_for
from tests.integration import test_flux_prometheus
from tests.integration.test_flux_http import Flx
from tests.integration.test_flux_prometheus import (
    PATH,
    PB,
    PROMETHEUS,
    _Exporter,
    compress,
    write_request,
)
from tests.peers import require

flux = test_flux_prometheus.flux  # the fixture: a running flux with an API key


def index(flux: Flx) -> LabelIndex:
    d = flux.daemon
    return LabelIndex(d.store.redis, d.store.keys)


def test_label_sets_are_indexed_as_sent(flux: Flx) -> None:
    ms = int(time.time()) * 1000
    body = write_request([
        ({"__name__": "http_requests_total", "job": "api", "instance": "10.0.0.1:9100",
          "code": "500"}, [(5.0, ms)]),
        ({"__name__": "http_requests_total", "job": "web", "code": "200"}, [(1.0, ms)]),
        ({"__name__": "plain"}, [(1.0, ms)]),
    ])  # fmt: skip
    r = flux.post(PATH, data=compress(body), headers={**PB, "X-Tenant-Id": "team.a"})
    assert r.status_code == 204, r.text
    api = "tenant.team_a.http_requests_total.code=500.instance=10_0_0_1:9100.job=api"
    assert flux.series(api)
    got = index(flux).get(api)
    assert got == {"__name__": "http_requests_total", "code": "500",
                   "instance": "10.0.0.1:9100", "job": "api", "_tenant_id": "team.a"}  # fmt: skip
    metrics = flux.daemon.store.metrics()
    sel = parse('http_requests_total{instance="10.0.0.1:9100",code=~"5.."}')
    assert index(flux).select(sel, metrics) == [api]
    assert len(index(flux).select(parse('{_tenant_id="team.a"}'), metrics)) == 3
    # new label sets wait for panorama to write them to SQL
    new = {
        m.decode() for m in flux.daemon.store.redis.smembers(flux.daemon.store.keys.labels_new())
    }
    assert api in new and len(new) == 3


def test_test_only_requests_index_nothing(flux: Flx) -> None:
    ms = int(time.time()) * 1000
    body = write_request([({"__name__": "dry", "a": "b"}, [(1.0, ms)])])
    r = flux.post(PATH, data=compress(body), headers={**PB, "x-test-only": "true"})
    assert r.status_code == 200 and r.json()["accepted"] == 1
    assert not flux.daemon.store.redis.exists(flux.daemon.store.keys.labels())


def test_drop_headers(flux: Flx) -> None:
    ms = int(time.time()) * 1000
    body = write_request([
        ({"__name__": "go_gc_duration_seconds", "quantile": "0.5"}, [(1.0, ms)]),
        ({"__name__": "process_cpu_seconds_total"}, [(1.0, ms)]),
        ({"__name__": "requests", "instance": "a:1", "pod": "web-1"}, [(1.0, ms)]),
        ({"__name__": "requests", "instance": "a:1", "pod": "db-1"}, [(2.0, ms)]),
    ])  # fmt: skip
    headers = {**PB, "dropMetrics": json.dumps(["go_.*", "process_cpu.*"]),
               "dropLabels": json.dumps([["instance", ".*"], ["pod", "web-.*"]])}  # fmt: skip
    r = flux.post(PATH, data=compress(body), headers=headers)
    assert r.status_code == 204, r.text
    assert sorted(flux.daemon.store.metrics()) == ["tenant.requests", "tenant.requests.pod=db-1"]
    assert index(flux).get("tenant.requests.pod=db-1") == {"__name__": "requests", "pod": "db-1"}
    assert flux.daemon.counters.peek()["prometheus.series_dropped_by_header"] == 2
    # anchored: "go" alone does not drop go_gc_duration_seconds
    r = flux.post(PATH, data=compress(body), headers={**PB, "dropMetrics": '["go"]'})
    assert r.status_code == 204
    assert "tenant.go_gc_duration_seconds.quantile=0_5" in flux.daemon.store.metrics()


HOSTILE_DROP_HEADERS = [
    ("dropMetrics", "go_.*", "not JSON"),
    ("dropMetrics", '{"a": 1}', "must be a JSON list"),
    ("dropMetrics", "[1]", "each entry must be a regex string"),
    ("dropMetrics", '["go_("]', "invalid regex"),
    ("dropMetrics", json.dumps(["a"] * 65), "more than 64 entries"),
    ("dropMetrics", json.dumps(["a" * 300]), "longer than 256"),
    ("dropMetrics", "[" * 5000 + "]" * 5000, "not JSON"),
    ("dropMetrics", json.dumps(["x" * 200] * 90)[:17000], "longer than 16384"),
    ("dropLabels", '["instance"]', "each entry must be a pair"),
    ("dropLabels", '[["instance"]]', "each entry must be a pair"),
    ("dropLabels", '[["", ".*"]]', "each entry must be a pair"),
    ("dropLabels", '[["instance", 5]]', "each entry must be a pair"),
    ("dropLabels", '[["instance", "*"]]', "invalid regex"),
    ("dropLabels", "null", "must be a JSON list"),
    ("dropMetrics", '["a{99999999999}"]', "a repetition count too large"),
    ("dropMetrics", '["(a|a)*b"]', "could take too long to match"),
    ("dropMetrics", '["(.*.*)*z"]', "could take too long to match"),
    ("dropLabels", '[["l", "a{99999999999}"]]', "a repetition count too large"),
    ("dropLabels", '[["l", ".*t.*t.*t.*z"]]', "could take too long to match"),
]


@pytest.mark.parametrize(("header", "value", "reason"), HOSTILE_DROP_HEADERS)
def test_hostile_drop_headers_are_400_and_store_nothing(
    flux: Flx, header: str, value: str, reason: str
) -> None:
    ms = int(time.time()) * 1000
    body = write_request([({"__name__": "kept", "a": "b"}, [(1.0, ms)])])
    r = flux.post(PATH, data=compress(body), headers={**PB, header: value})
    assert r.status_code == 400, r.text
    assert r.json()["reason"] == "bad_drop_header"
    assert header in r.json()["error"] and reason in r.json()["error"]
    assert flux.daemon.store.metrics() == []
    assert flux.post(PATH, data=compress(body), headers=PB).status_code == 204


def test_existing_dotted_names_are_unchanged(flux: Flx) -> None:
    """The flux JSON API's dotted names stay as they were; a selector sees them by name."""
    now = int(time.time())
    r = flux.post("/flux/metric_data_post", {"metrics": [
        {"metric": "web.host1.requests", "timestamp": now, "value": 1.0}]})  # fmt: skip
    assert r.status_code in (200, 204), r.text
    assert flux.daemon.store.metrics() == ["tenant.web.host1.requests"]
    assert index(flux).get("tenant.web.host1.requests") == {"__name__": "tenant.web.host1.requests"}
    sel = parse("tenant.web.host1.requests")
    assert index(flux).select(sel, flux.daemon.store.metrics()) == ["tenant.web.host1.requests"]
    assert not flux.daemon.store.redis.exists(flux.daemon.store.keys.labels())


def test_real_prometheus_labels(flux: Flx, tmp_path: Path) -> None:
    """Debian's prometheus (2.42.0+ds) does not send remote_write ``headers:``, so the
    drop headers are proven with synthetic requests above; this is the label index fed
    by a real Prometheus and read by selectors."""
    if PROMETHEUS is None:
        require("prometheus", "Debian's prometheus is not installed (apt-get install prometheus)")
    exporter = ThreadingHTTPServer(("127.0.0.1", 0), _Exporter)
    threading.Thread(target=exporter.serve_forever, daemon=True).start()
    port = exporter.server_address[1]
    conf = tmp_path / "prometheus.yml"
    conf.write_text(f"""
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: exporter
    static_configs:
      - targets: ["127.0.0.1:{port}"]
remote_write:
  - url: "{flux.url}/flux/prometheus/write"
    authorization:
      credentials: "{flux.key}"
    queue_config:
      max_samples_per_send: 1000
      batch_send_deadline: 1s
      min_backoff: 100ms
      max_backoff: 1s
""")
    with open(tmp_path / "prometheus.log", "wb") as log:
        proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={conf}", f"--storage.tsdb.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{free_port()}"],
            stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
    try:
        name = f"tenant.skyline_test_gauge.instance=127_0_0_1:{port}.job=exporter.shard=a"
        assert wait_for(lambda: flux.series(name), timeout=30, interval=0.2)[0][1] == 42.0
        names = flux.daemon.store.metrics()
        assert index(flux).get(name) == {
            "__name__": "skyline_test_gauge",
            "shard": "a",
            "instance": f"127.0.0.1:{port}",
            "job": "exporter",
        }
        sel = parse(f'skyline_test_gauge{{instance="127.0.0.1:{port}",job=~"exp.*"}}')
        assert index(flux).select(sel, names) == [name]
        up = parse('up{job="exporter"}')
        assert index(flux).select(up, names) == [
            f"tenant.up.instance=127_0_0_1:{port}.job=exporter"
        ]
        scrape = index(flux).select(parse('{__name__=~"scrape_.*",job="exporter"}'), names)
        assert scrape and all(".scrape_" in n for n in scrape)
    finally:
        proc.terminate()
        proc.wait(10)
        exporter.shutdown()


def test_a_label_set_goes_with_its_series(flux: Flx) -> None:
    ms = int(time.time()) * 1000
    body = write_request([({"__name__": "gone", "a": "b"}, [(1.0, ms)]),
                          ({"__name__": "kept", "a": "b"}, [(1.0, ms)])])  # fmt: skip
    assert flux.post(PATH, data=compress(body), headers=PB).status_code == 204
    store = flux.daemon.store
    assert index(flux).get("tenant.gone.a=b") == {"__name__": "gone", "a": "b"}
    store.delete("tenant.gone.a=b")
    assert not store.redis.hexists(store.keys.labels(), "tenant.gone.a=b")
    # roomba deleting an inactive metric deletes its label set too
    out = store.trim_many(["tenant.kept.a=b"], now=time.time() + 10 * 86400, keep_seconds=86400,
                          grace=0, inactive_after=86400, companions=lambda m: [])  # fmt: skip
    assert out["deleted"] == 1
    assert store.redis.hlen(store.keys.labels()) == 0
