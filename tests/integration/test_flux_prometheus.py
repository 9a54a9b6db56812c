"""Prometheus remote_write into flux: synthetic WriteRequests (mapping, hostile input)
and Debian's real ``prometheus`` binary scraping a local exporter."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cramjam import snappy

from skyline.ingest.flux.prometheus import WriteRequest
from tests.conftest import free_port, wait_for
from tests.integration.test_flux_http import Flx, running_flux, start_flux
from tests.memory import kept
from tests.peers import require

PATH = "/flux/prometheus/write"
PB = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
      "X-Prometheus-Remote-Write-Version": "0.1.0"}  # fmt: skip


def write_request(series: list[tuple[dict[str, str], list[tuple[float, int]]]]) -> bytes:
    req = WriteRequest()
    for labels, samples in series:
        ts = req.timeseries.add()
        for k, v in sorted(labels.items()):
            ts.labels.add(name=k, value=v)
        for value, ms in samples:
            ts.samples.add(value=value, timestamp=ms)
    return req.SerializeToString()


def compress(data: bytes) -> bytes:
    """Snappy block format, as Prometheus sends it."""
    return bytes(snappy.compress_raw(data))


@pytest.fixture
def flux(make_settings):
    settings, key, engine = start_flux(
        make_settings, SKYLINE__FLUX__MAX_DECOMPRESSED_BYTES="400000",
        SKYLINE__FLUX__PROMETHEUS_MAX_LABELS="8",
    )  # fmt: skip
    with running_flux(settings) as daemon:
        yield Flx(daemon, key, engine)


def test_remote_write_name_mapping_and_buckets(flux: Flx) -> None:
    ms = int(time.time()) * 1000
    body = write_request([
        ({"__name__": "http_requests_total", "job": "api", "instance": "10.0.0.1:9100",
          "path": "/v1/x y", "empty": ""}, [(5.0, ms - 1000), (6.0, ms)]),
        ({"__name__": "latency_bucket", "le": "0.5"}, [(1.0, ms)]),
        ({"__name__": "up"}, [(float("nan"), ms)]),
    ])  # fmt: skip
    r = flux.post(PATH, data=compress(body), headers={**PB, "X-Tenant-Id": "team.a"})
    assert r.status_code == 204, r.text
    name = "tenant.team_a.http_requests_total.instance=10_0_0_1:9100.job=api.path=_v1_x_y"
    assert flux.series(name) == [[ms // 1000 - 1, 5.0], [ms // 1000, 6.0]]
    assert not [m for m in flux.daemon.store.metrics() if "bucket" in m or m.endswith(".up")]
    counts = flux.daemon.counters.peek()
    assert counts["prometheus.bucket_series_dropped"] == 1 and counts["prometheus.nan_skipped"] == 1


def test_old_samples_are_400_but_the_valid_ones_are_stored(flux: Flx) -> None:
    ms = int(time.time()) * 1000
    body = write_request([({"__name__": "fresh"}, [(1.0, ms)]),
                          ({"__name__": "replayed"}, [(2.0, ms - 3_600_000)])])  # fmt: skip
    r = flux.post(PATH, data=compress(body), headers=PB)
    assert r.status_code == 400 and r.json()["reason"] == "samples_too_old"
    assert r.json()["accepted"] == 1
    assert flux.series("tenant.fresh") == [[ms // 1000, 1.0]]
    assert flux.series("tenant.replayed") == []


def test_hostile_remote_write(flux: Flx) -> None:
    ms = int(time.time()) * 1000
    good = write_request([({"__name__": "g", "a": "b"}, [(1.0, ms)])])
    many = write_request([({"__name__": "wide", **{f"l{i}": "v" for i in range(20)}}, [(1.0, ms)]),
                          ({"__name__": "narrow"}, [(1.0, ms)])])  # fmt: skip
    bad_name = write_request([({"__name__": "x" * 2000}, [(1.0, ms)])])
    cases = [
        ("truncated protobuf", compress(good[:-3]), PB, 400, "bad_protobuf"),
        ("garbage protobuf", compress(b"\xff" * 50), PB, 400, "bad_protobuf"),
        ("not snappy", good, PB, 400, "bad_snappy"),
        ("corrupt snappy", compress(good)[:-4], PB, 400, "bad_snappy"),
        ("snappy bomb", compress(b"\x00" * 1_000_000), PB, 413, "decompressed_too_large"),
        ("json body", b"{}", {**PB, "Content-Type": "application/json"}, 415, "unsupported_content_type"),
        ("gzip encoding", good, {**PB, "Content-Encoding": "gzip"}, 415, "unsupported_encoding"),
        ("too many labels", compress(many), PB, 207, None),
        ("name too long", compress(bad_name), PB, 400, "invalid_datapoints"),
    ]  # fmt: skip
    for what, data, headers, status, reason in cases:
        r = flux.post(PATH, data=data, headers=headers)
        assert r.status_code == status, f"{what}: {r.text}"
        if reason:
            assert r.json()["reason"] == reason, what
    assert flux.series("tenant.narrow") and not flux.series("tenant.wide")
    r = flux.post(PATH, data=compress(good), headers=PB)
    assert r.status_code == 204 and flux.series("tenant.g.a=b")
    r = flux.post(PATH, data=compress(good), headers=PB, key=False)
    assert r.status_code == 401
    bearer = {**PB, "Authorization": f"Bearer {flux.key}"}
    assert flux.post(PATH, data=compress(good), headers=bearer, key=False).status_code == 204


# Issue 15 item 4: label values that are unique and long must not be remembered.
# (label value, the status of a request of 300 such series): "tenant.m.v=" and the value
# make the name, at most MAX_NAME_LENGTH (1,024) characters.
HOSTILE_LABEL_VALUES = [
    (lambda i: f"{i:08d}" + "v" * 1100, 400),  # too long for a name: all rejected
    (lambda i: f"{i:08d}" + "/" * 900, 204),  # long, every character cleaned
    (lambda i: f"{i:08d}" + "x" * 400, 204),  # long but valid: stored, not cached
]


@pytest.mark.parametrize(("make_value", "status"), HOSTILE_LABEL_VALUES)
def test_unique_long_label_values_do_not_grow_memory(flux: Flx, make_value, status) -> None:
    """What flux's code (and what it calls: the label index, the store) still holds
    after 3,000 unique long label values: the label index's bounded set of hashes and
    a StatsD buffer, well under one copy of the names (about 1.4 MB here)."""
    ms = int(time.time()) * 1000
    good = write_request([({"__name__": "g", "a": "b"}, [(1.0, ms)])])
    flux.post(PATH, data=compress(good), headers=PB)  # warm up the worker

    def hostile_requests() -> None:
        for r in range(10):
            series = [({"__name__": "m", "v": make_value(r * 300 + i)}, [(1.0, ms)])
                      for i in range(300)]  # fmt: skip
            resp = flux.post(PATH, data=compress(write_request(series)), headers=PB)
            assert resp.status_code == status, resp.text

    grown, where = kept(hostile_requests, "*/skyline/ingest/flux/*")
    assert grown < 1 << 20, f"flux kept {grown} bytes of label values, most at:\n{where}"
    assert flux.post(PATH, data=compress(good), headers=PB).status_code == 204


class _Exporter(BaseHTTPRequestHandler):
    body = (
        b"# TYPE skyline_test_gauge gauge\n"
        b'skyline_test_gauge{shard="a"} 42\n'
        b"# TYPE skyline_test_seconds histogram\n"
        b'skyline_test_seconds_bucket{le="0.1"} 1\n'
        b'skyline_test_seconds_bucket{le="+Inf"} 2\n'
        b"skyline_test_seconds_sum 0.3\n"
        b"skyline_test_seconds_count 2\n"
    )

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


PROMETHEUS = shutil.which("prometheus")


def test_real_prometheus_remote_write(flux: Flx, tmp_path: Path) -> None:
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
        series = wait_for(lambda: flux.series(name), timeout=30, interval=0.2)
        assert series[0][1] == 42.0
        names = flux.daemon.store.metrics()
        assert f"tenant.skyline_test_seconds_count.instance=127_0_0_1:{port}.job=exporter" in names
        assert not [n for n in names if "_bucket" in n]
        assert f"tenant.up.instance=127_0_0_1:{port}.job=exporter" in names
    finally:
        proc.terminate()
        proc.wait(10)
        exporter.shutdown()
