"""vista against real VictoriaMetrics and Prometheus servers on loopback: series become
metrics, a 30-day backfill reaches the rollups mirage reads, an outage is caught up
with no point lost or doubled, and malformed, erroring, hung and huge answers fail
cleanly."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import requests

from skyline.ingest.vista.sources import SourceError
from skyline.settings.selector import parse
from skyline.store.labels import LabelIndex
from skyline.store.rollups import Rollups
from tests.conftest import free_port, wait_for
from tests.integration.vista_fixtures import Harness, vista_conf
from tests.peers import require

VM = shutil.which("victoria-metrics")
PROMETHEUS = shutil.which("prometheus")
DAY = 86400


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class Server:
    def __init__(self, args: list[str], port: int, log: Path) -> None:
        self.port, self.args, self.log = port, args, log
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.args, stdout=log, stderr=log)
        wait_for(lambda: _listening(self.port), timeout=30, interval=0.1)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture(scope="module")
def vm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if VM is None:
        require("victoria-metrics", "apt-get install victoria-metrics")
    d = tmp_path_factory.mktemp("vm")
    port = free_port()
    server = Server([VM, f"-storageDataPath={d / 'data'}", f"-httpListenAddr=127.0.0.1:{port}",
                     "-retentionPeriod=100y", "-search.latencyOffset=0s"], port, d / "vm.log")  # fmt: skip
    server.start()
    yield server
    server.stop()


def vm_import(vm: Server, lines: list[str]) -> None:
    r = requests.post(
        f"{vm.url}/api/v1/import/prometheus", data="\n".join(lines) + "\n", timeout=30
    )
    r.raise_for_status()
    requests.get(f"{vm.url}/internal/force_flush", timeout=30).raise_for_status()


def vm_source(vm: Server, name: str, query: str, **extra: object) -> dict[str, object]:
    return {"name": name, "kind": "victoriametrics", "url": vm.url, "query": query,
            "namespace": "vm", "step": 60, **extra}  # fmt: skip


def test_backfill_30_days_reaches_mirage(vm: Server, make_settings, tmp_path: Path) -> None:
    now = int(time.time()) // 600 * 600
    start = now - 30 * DAY
    lines = [
        f'bf_orders{{shop="a"}} {100 + (t // 600) % 7} {t * 1000}' for t in range(start, now, 600)
    ]
    vm_import(vm, lines)
    conf = vista_conf(tmp_path / "s.conf",
                      vm_source(vm, "bf", 'bf_orders{shop="a"}', step=600, backfill_days=30.0))  # fmt: skip
    h = Harness(make_settings(conf))
    metric = "vm.bf_orders.shop=a"
    r = wait_for(lambda: h.pull("bf", now) if _has_data(vm, "bf_orders") else None, timeout=20)
    assert r.delivered.live > 100 and r.delivered.rolled > 3000
    live = h.store.read(metric)
    assert live.timestamps.min() >= now - DAY
    history = Rollups(h.store, h.settings.mirage.rollup_resolution).history(metric, start, now)
    assert len(history) >= 30 * 144 - 2
    assert history.timestamps[0] <= start + 600
    # a second pull adds nothing
    assert h.pull("bf", now + 60).new == 0
    h.close()


def test_victoriametrics_series_keep_their_labels(vm: Server, make_settings, tmp_path) -> None:
    now = int(time.time()) // 60 * 60
    vm_import(vm, [f'lbl_http{{code="{c}",instance="10.0.0.1:80"}} {v} {(now - 120) * 1000}'
                   for c, v in (("500", 3), ("200", 90))])  # fmt: skip
    h = Harness(make_settings(vista_conf(tmp_path / "s.conf", vm_source(
        vm, "lbl", "lbl_http", backfill_days=0.01))))  # fmt: skip
    r = wait_for(lambda: h.pull("lbl", now) if _has_data(vm, "lbl_http") else None, timeout=20)
    assert r.metrics == 2
    names = h.store.metrics()
    five = "vm.lbl_http.code=500.instance=10.0.0.1:80"  # vista keeps dots in values
    assert sorted(names) == ["vm.lbl_http.code=200.instance=10.0.0.1:80", five]
    index = LabelIndex(h.redis, h.keys)
    assert index.get(five) == {"__name__": "lbl_http", "code": "500", "instance": "10.0.0.1:80"}
    assert index.select(parse('lbl_http{code=~"5..",instance="10.0.0.1:80"}'), names) == [five]
    h.close()


def _has_data(vm: Server, name: str) -> bool:
    # An explicit range (the points are an hour old) and no cache: the series lookup must
    # see them as soon as they are indexed.
    params = {"match[]": name, "start": str(int(time.time()) - 2 * 86400), "nocache": "1"}
    r = requests.get(f"{vm.url}/api/v1/series", params=params, timeout=10)
    return bool(r.json().get("data"))


def test_outage_catch_up_no_loss_no_doubles(vm: Server, make_settings, tmp_path: Path) -> None:
    now = int(time.time()) // 60 * 60
    conf = vista_conf(tmp_path / "s.conf", vm_source(vm, "oc", "oc_load", backfill_days=0.05))
    h = Harness(make_settings(conf))
    vm_import(vm, [f"oc_load {i} {(now - 3600 + 60 * i) * 1000}" for i in range(30)])
    wait_for(lambda: _has_data(vm, "oc_load"), timeout=60)
    first = h.pull("oc", now - 3600 + 60 * 29)
    assert first.new == 30
    vm.stop()  # outage: the next pulls fail
    with pytest.raises(SourceError) as exc:
        h.pull("oc", now - 1200)
    assert exc.value.reason == "unreachable"
    vm.start()
    vm_import(vm, [f"oc_load {i} {(now - 3600 + 60 * i) * 1000}" for i in range(30, 60)])
    got = [0]

    def caught_up() -> bool:
        got[0] += h.pull("oc", now).new
        return got[0] >= 30

    wait_for(caught_up, timeout=20, interval=0.2)
    s = h.store.read("vm.oc_load")
    # PromQL carries the last sample forward to the instants after it (up to now)
    assert s.timestamps.tolist()[:60] == [now - 3600 + 60 * i for i in range(60)]
    assert s.values.tolist()[:60] == [float(i) for i in range(60)]
    assert h.raw_count("vm.oc_load") == len(s.timestamps)  # nothing stored twice
    h.close()


class _Bad(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        q = self.path
        if "hang" in q:
            time.sleep(5)
        if "huge" in q:
            body = (
                b'{"status":"success","data":{"resultType":"matrix","result":[' + b"0" * 5_000_000
            )
        elif "malformed" in q:
            body = b'{"status":"success","data":{"resultType":"vector","result":[]}}'
        else:
            body = b"<html>not json</html>"
        try:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            return

    def log_message(self, *args: object) -> None:
        pass


def test_bad_answers_fail_cleanly(vm: Server, make_settings, tmp_path: Path) -> None:
    bad = ThreadingHTTPServer(("127.0.0.1", 0), _Bad)
    threading.Thread(target=bad.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{bad.server_address[1]}"
    conf = vista_conf(
        tmp_path / "s.conf",
        vm_source(
            vm,
            "err",
            "sum(",
        ),
        {"name": "mal", "kind": "prometheus", "url": url, "query": "malformed"},
        {"name": "notjson", "kind": "prometheus", "url": url, "query": "x"},
        {"name": "hang", "kind": "prometheus", "url": url, "query": "hang", "timeout": 1.0},
        {"name": "huge", "kind": "prometheus", "url": url, "query": "huge", "max_points": 10},
        vm_source(vm, "many", "bad_many", max_points=50, backfill_days=1.0),
    )
    # a day of minutely points of its own (the test may run alone, or on another
    # pytest-xdist worker than the backfill test and its bf_orders)
    day = int(time.time()) // 60 * 60 - DAY
    vm_import(vm, [f"bad_many {i % 7} {(day + 60 * i) * 1000}" for i in range(1440)])
    wait_for(lambda: _has_data(vm, "bad_many"), timeout=20)
    h = Harness(make_settings(conf))
    expected = {"err": "query", "mal": "malformed", "notjson": "malformed", "hang": "timeout",
                "huge": "too_large", "many": "too_large"}  # fmt: skip
    now = time.time()
    for name, reason in expected.items():
        with pytest.raises(SourceError) as exc:
            h.pull(name, now)
        assert exc.value.reason == reason, (name, str(exc.value))
    bad.shutdown()
    h.close()


class _Exporter(BaseHTTPRequestHandler):
    value = 1.0

    def do_GET(self) -> None:  # noqa: N802
        body = f'vista_temp{{room="lab"}} {self.value}\n'.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_real_prometheus_query_range(make_settings, tmp_path: Path) -> None:
    if PROMETHEUS is None:
        require("prometheus", "apt-get install prometheus")
    exporter = ThreadingHTTPServer(("127.0.0.1", 0), _Exporter)
    threading.Thread(target=exporter.serve_forever, daemon=True).start()
    conf = tmp_path / "prometheus.yml"
    conf.write_text(f"""
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: lab
    static_configs:
      - targets: ["127.0.0.1:{exporter.server_address[1]}"]
""")
    port = free_port()
    prom = Server([PROMETHEUS, f"--config.file={conf}", f"--storage.tsdb.path={tmp_path / 'data'}",
                   f"--web.listen-address=127.0.0.1:{port}"], port, tmp_path / "prom.log")  # fmt: skip
    prom.start()
    try:
        sconf = vista_conf(tmp_path / "s.conf", {
            "name": "lab", "kind": "prometheus", "url": prom.url, "query": "vista_temp",
            "step": 1, "namespace": "prom", "options": {"drop_labels": ["instance"]},
        })  # fmt: skip
        h = Harness(make_settings(sconf))
        metric = "prom.vista_temp.job=lab.room=lab"
        t0 = time.time()
        wait_for(lambda: h.pull("lab", time.time()).new, timeout=30, interval=0.5)
        _Exporter.value = 500.0  # the anomaly, injected at the source
        wait_for(lambda: 500.0 in h.store.read(metric).values.tolist()
                 or h.pull("lab", time.time()) and False, timeout=30, interval=0.5)  # fmt: skip
        s = h.store.read(metric)
        assert len(np.unique(s.timestamps)) == len(s.timestamps) == h.raw_count(metric)
        assert s.timestamps.min() >= int(t0) - 2
        # the series keeps its labels (drop_labels left out) for selectors
        index = LabelIndex(h.redis, h.keys)
        assert index.get(metric) == {"__name__": "vista_temp", "job": "lab", "room": "lab"}
        assert index.select(parse('vista_temp{room=~"la.",instance=""}'), [metric]) == [metric]
        h.close()
    finally:
        prom.stop()
        exporter.shutdown()
