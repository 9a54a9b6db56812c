"""A hostile upstream against vista's pull (a Graphite ``/render`` on a free port that
answers what each test asks): one bad timestamp must not stop a metric for good, an
answer trickled a byte at a time is cut at the source's timeout, stopping cuts the
requests under way, and JSON nested too deep is ``malformed``.  Found by a hunt
(2026-12-07): each of these stored nothing more, hung or raised."""

from __future__ import annotations

import json
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import sqlalchemy as sa

from skyline.ingest.vista.sources import SourceError
from tests.integration.test_mirage_history_http import HistoryServer
from tests.integration.vista_fixtures import Harness, vista_conf

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def server():
    s = HistoryServer([])
    yield s
    s.close()


@pytest.fixture
def tls_server(tmp_path, monkeypatch):
    """The same upstream over TLS, with a certificate for 127.0.0.1 that requests is
    told to trust (``REQUESTS_CA_BUNDLE``)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    s = HistoryServer([], tls=context)
    yield s
    s.close()


def harness(make_settings, tmp_path: Path, server: HistoryServer, timeout: float = 5) -> Harness:
    """The Graphite source ``up`` of ``server`` (query ``x``, metrics ``up.*``)."""
    return source_harness(make_settings, tmp_path, "up", kind="graphite", url=server.url,
                          query="x", timeout=timeout, backfill_days=0.05)  # fmt: skip


def source_harness(make_settings, tmp_path: Path, name: str, **table: object) -> Harness:
    """One [[vista]] source ``name`` (its namespace too) with ``table``'s keys."""
    return Harness(make_settings(vista_conf(tmp_path / "s.conf",
                                            {"name": name, "namespace": name, **table})))  # fmt: skip


@pytest.mark.parametrize("bad", ["future", "millis", "nan"])
def test_one_bad_timestamp_does_not_stop_the_metric(make_settings, tmp_path, server, bad):
    """A point in the future, in milliseconds or without a time among good ones: it is
    refused and counted, and the metric's cursor stays at the newest good point, so the
    next pulls store the next points (the cursor used to jump to the bad time)."""
    now = int(time.time()) // 60 * 60
    wrong = {"future": now + 3 * 86400, "millis": now * 1000, "nan": float("nan")}[bad]
    server.points = [(now - 60 * k, float(k)) for k in range(5, 0, -1)] + [(wrong, 9.0)]
    h = harness(make_settings, tmp_path, server)
    first = h.pull("up", now)
    reason = "timestamp_not_numeric" if bad == "nan" else "timestamp_in_future"
    assert dict(first.delivered.rejected) == {reason: 1}
    assert [v for _, v in h.series("up.x")] == [5.0, 4.0, 3.0, 2.0, 1.0]
    server.points = [(now, 0.5), (wrong, 9.0)]
    second = h.pull("up", now + 60)
    assert [v for _, v in h.series("up.x")][-1] == 0.5 and second.delivered.live == 1
    h.close()


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
@pytest.mark.parametrize("mode", ["trickle", "trickle-headers", "trickle-chunk"])
def test_a_trickled_answer_is_cut_at_the_timeout(make_settings, tmp_path, request, mode, tls):
    server = request.getfixturevalue("tls_server" if tls else "server")
    server.mode = mode
    h = harness(make_settings, tmp_path, server, timeout=1)
    with pytest.raises(SourceError) as caught:
        h.pull("up", time.time())
    assert caught.value.reason == "timeout" and "deadline" in str(caught.value)
    assert server.trickled < 100  # cut, not read to its end
    h.close()


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_stopping_cuts_a_request_under_way(make_settings, tmp_path, request, tls):
    """The source's timeout is a minute and the upstream trickles: ``close`` (vista
    stopping) ends the pull at once, so its thread cannot keep the process alive."""
    server = request.getfixturevalue("tls_server" if tls else "server")
    server.mode = "trickle"
    h = harness(make_settings, tmp_path, server, timeout=60)
    source, failures = h.source("up"), []

    def run() -> None:
        try:
            h.pull("up", time.time())
        except SourceError as exc:
            failures.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    while not server.requests:
        time.sleep(0.05)
    source.close()
    thread.join(30)
    assert not thread.is_alive()
    assert failures[0].reason == "timeout" and "stopping" in str(failures[0])
    assert server.trickled < 100  # cut, not read to its end
    with pytest.raises(SourceError, match="stopping"):  # and no new request is made
        h.pull("up", time.time())
    assert len(server.requests) == 1
    h.close()


def test_json_nested_too_deep_is_malformed(make_settings, tmp_path, server):
    server.mode = "deep"
    h = harness(make_settings, tmp_path, server)
    with pytest.raises(SourceError) as caught:
        h.pull("up", time.time())
    assert caught.value.reason == "malformed"
    h.close()


def test_points_older_than_the_rollups_keep_are_refused_and_counted(make_settings, tmp_path,
                                                                   server):  # fmt: skip
    """They were counted as rolled up while the rollups dropped them."""
    now = int(time.time()) // 600 * 600
    retention = make_settings().mirage.rollup_retention
    server.points = [(now - retention - 86400, 1.0), (now - 7200, 2.0), (now - 60, 3.0)]
    h = harness(make_settings, tmp_path, server)
    out = h.pull("up", now, since=now - retention - 2 * 86400).delivered
    assert dict(out.rejected) == {"timestamp_too_old": 1}
    assert out.live == 2 and out.rolled == 0
    h.close()


def test_bad_sql_rows_are_refused_alone(make_settings, tmp_path):
    """A row with a NULL or unreadable time, a NULL name or a value that is no number
    is refused and counted; the other rows of the pass are stored (one such row used to
    fail the whole pass, and a NULL name made a metric called "None")."""
    now = int(time.time()) // 60 * 60
    url = f"sqlite:///{tmp_path / 'rows.sqlite'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE m (ts, name, value)"))
        conn.execute(sa.text("INSERT INTO m VALUES (:t, :n, :v)"), [
            {"t": now - 120, "n": "good", "v": 1.0}, {"t": None, "n": "good", "v": 2.0},
            {"t": "yesterday", "n": "good", "v": 3.0}, {"t": now - 60, "n": None, "v": 4.0},
            {"t": now - 60, "n": "good", "v": "many"}, {"t": now - 60, "n": "other", "v": 5.0},
            {"t": now - 60, "n": "x y", "v": 6.0},
            {"t": now - 60, "n": "x_y", "v": 7.0},  # the same metric once made safe: refused
        ])  # fmt: skip
    engine.dispose()
    conf = vista_conf(tmp_path / "s.conf", {
        "name": "rows", "kind": "sql", "url": url, "namespace": "db", "backfill_days": 0.05,
        "query": "SELECT ts, name, value FROM m", "options": {"time_type": "epoch"},
    })  # fmt: skip
    h = Harness(make_settings(conf))
    out = h.pull("rows", now).delivered
    assert dict(out.rejected) == {"timestamp_not_numeric": 2, "name_missing": 1,
                                  "value_not_finite": 1, "name_collision": 1}  # fmt: skip
    assert h.series("db.good") == [(now - 120, 1.0)] and h.series("db.other") == [(now - 60, 5.0)]
    assert "db.None" not in h.store.metrics() and h.series("db.x_y") == [(now - 60, 6.0)]
    h.close()


class JsonServer:
    """Fixed JSON answers by path (GET or POST) on a free port; the paths asked, in order."""

    def __init__(self, answers: dict[str, object]) -> None:
        self.answers, self.asked = answers, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return

            def do_GET(self) -> None:  # noqa: N802
                path = self.path.partition("?")[0]
                outer.asked.append(path)
                body = json.dumps(outer.answers.get(path, {})).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_prometheus_label_values_sent_as_numbers_are_text(make_settings, tmp_path):
    now = int(time.time()) // 60 * 60
    matrix = {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"__name__": 5, "code": 500}, "values": [[now - 60, "1"]]},
    ]}}  # fmt: skip
    fake = JsonServer({"/api/v1/query_range": matrix})
    h = source_harness(make_settings, tmp_path, "p", kind="prometheus", url=fake.url,
                       query="up", backfill_days=0.05)  # fmt: skip
    assert h.pull("p", now).delivered.live == 1
    assert h.series("p.5.code=500") == [(now - 60, 1.0)]
    h.close()
    fake.close()


@pytest.mark.parametrize("run", [{"info": None, "data": None}, {"info": [], "data": {"metrics": 5}},
                                 {"info": {"run_id": "r"}, "data": {"metrics": None}}])  # fmt: skip
def test_mlflow_runs_of_the_wrong_shape_are_skipped(make_settings, tmp_path, run):
    fake = JsonServer({"/api/2.0/mlflow/experiments/get-by-name": {"experiment": {"experiment_id": "1"}},
                       "/api/2.0/mlflow/runs/search": {"runs": [run]}})  # fmt: skip
    h = source_harness(make_settings, tmp_path, "ml", kind="mlflow", url=fake.url, query="exp")
    assert h.pull("ml", time.time()).metrics == 0
    h.close()
    fake.close()


def test_mlflow_paging_that_repeats_its_token_is_malformed(make_settings, tmp_path):
    fake = JsonServer({"/api/2.0/mlflow/experiments/get-by-name": {"experiment": {"experiment_id": "1"}},
                       "/api/2.0/mlflow/runs/search": {"runs": [], "next_page_token": "again"}})  # fmt: skip
    h = source_harness(make_settings, tmp_path, "ml", kind="mlflow", url=fake.url, query="exp")
    with pytest.raises(SourceError, match="the same next_page_token again"):
        h.pull("ml", time.time())
    assert fake.asked.count("/api/2.0/mlflow/runs/search") == 2
    h.close()
    fake.close()


def test_series_whose_safe_names_collide_are_not_merged(make_settings, tmp_path):
    """``path="/a?b"`` and ``path="/a&b"`` are both ``path=/a_b`` once made a metric
    name: the second is refused and counted, not merged into the first's points."""
    now = int(time.time()) // 60 * 60
    matrix = {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"__name__": "req", "path": "/a?b"}, "values": [[now - 60, "1"]]},
        {"metric": {"__name__": "req", "path": "/a&b"}, "values": [[now - 120, "2"], [now - 60, "3"]]},
    ]}}  # fmt: skip
    fake = JsonServer({"/api/v1/query_range": matrix})
    h = source_harness(make_settings, tmp_path, "p", kind="prometheus", url=fake.url,
                       query="req", backfill_days=0.05)  # fmt: skip
    out = h.pull("p", now).delivered
    assert dict(out.rejected) == {"name_collision": 2} and out.live == 1
    assert h.series("p.req.path=/a_b") == [(now - 60, 1.0)]
    h.close()
    fake.close()


class KeepAliveServer:
    """A Graphite ``/render`` over HTTP/1.1 that keeps connections alive: the first
    request of a connection is answered at once, the next ones trickle (a byte every
    0.3 s); ``peers`` is the client address of each request."""

    def __init__(self, body: bytes) -> None:
        self.peers: list[tuple[str, int]] = []
        self.trickled = 0
        self.closed = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                return

            def do_GET(self) -> None:  # noqa: N802
                first = self.client_address not in outer.peers
                outer.peers.append(self.client_address)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)) if first else "100")
                self.end_headers()
                if first:
                    self.wfile.write(body)
                    return
                for _ in range(100):
                    if outer.closed.wait(0.3):
                        return
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    outer.trickled += 1

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.closed.set()
        self.server.shutdown()
        self.server.server_close()


def test_a_kept_alive_connection_is_cut_at_the_deadline_too(make_settings, tmp_path):
    """A source keeps its connection alive between requests: the second request, on the
    same socket, trickles, and is cut at the source's timeout like a new one."""
    now = int(time.time()) // 60 * 60
    fake = KeepAliveServer(json.dumps([{"target": "x", "datapoints": [[1.0, now - 60]]}]).encode())
    conf = vista_conf(tmp_path / "s.conf", {
        "name": "up", "kind": "graphite", "url": fake.url, "query": "x", "namespace": "up",
        "timeout": 1, "backfill_days": 0.05,
    })  # fmt: skip
    h = Harness(make_settings(conf))
    assert h.pull("up", now).delivered.live == 1
    with pytest.raises(SourceError) as caught:
        h.pull("up", now + 60)
    assert caught.value.reason == "timeout" and len(fake.peers) == 2
    assert fake.peers[0] == fake.peers[1]  # the same connection
    assert fake.trickled < 100  # cut, not read to its end
    h.close()
    fake.close()


def test_a_refused_point_asked_again_is_counted_once(make_settings, tmp_path, server):
    """The overlap asks for the last minutes again on every pass: a point refused in
    one pass is not counted again in the next."""
    now = int(time.time()) // 60 * 60
    server.points = [(now - 120, 1.0), (now - 60, float("nan"))]
    h = harness(make_settings, tmp_path, server)
    assert dict(h.pull("up", now).delivered.rejected) == {"value_not_finite": 1}
    server.points.append((now, 2.0))
    second = h.pull("up", now + 60).delivered
    assert dict(second.rejected) == {} and second.live == 1
    h.close()
