"""Mirage's window from Graphite or Prometheus over real sockets: a local HTTP server
speaking the documented JSON, and misbehaving in every way a fetch can fail (never
answering, trickling its headers, a chunk-size line or its body past the deadline,
HTML, truncated JSON, the wrong shape, only null/NaN values, 500, too large, refused)
-> a counted failure, the rollups instead, no crash.  Also checks in flight at once
on the daemon's pool, bounded by workers and max_inflight; a check whose fetch
outlasts max_check_age; a stop during hung fetches."""

from __future__ import annotations

import gzip
import json
import socket
import ssl
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from skyline.analysis.mirage.agent import Mirage
from skyline.analysis.mirage.history import HistorySource
from skyline.analysis.mirage.remote import promql
from skyline.runtime.daemon import Counters
from skyline.store.rollups import downsample
from skyline.store.timeseries import TimeSeriesStore
from tests.conftest import wait_for
from tests.integration.pipeline_fixtures import anomaly, pipeline_settings, running
from tests.integration.test_mirage import (
    CONF,
    RES,
    alerts,
    bucket_end,
    history_of_days,
    trail,
    verdicts,
)

DAY = 86400


class HistoryServer:
    """Graphite's /render and Prometheus' /api/v1/query_range on a free port; ``mode``
    picks the answer; ``hold`` (an Event) keeps requests waiting until it is set."""

    def __init__(self, points: list[tuple[int, float | None]],
                 tls: ssl.SSLContext | None = None) -> None:  # fmt: skip
        self.points, self.mode = points, "ok"
        self.requests: list[dict[str, str]] = []
        self.hold: threading.Event | None = None
        self.closed = threading.Event()
        self.active = self.max_active = 0
        self.trickled = 0  # bytes of trickles sent: all 100 of one unless the client cut it
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return

            def do_GET(self) -> None:  # noqa: N802
                outer.handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.scheme = "https" if tls else "http"
        if tls:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.closed.set()
        if self.hold:
            self.hold.set()
        self.server.shutdown()
        self.server.server_close()

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        path, _, query = h.path.partition("?")
        with self.lock:
            self.requests.append({"path": path, **dict(urllib.parse.parse_qsl(query))})
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            if self.hold is not None:
                self.hold.wait(30)
            if self.mode in TRICKLES:
                return self.trickle(h, *TRICKLES[self.mode])
            if self.mode == "gzip-chunked":
                return self.gzip_chunked(h, self.answer(path)[1])
            status, body = self.answer(path)
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout under test)
        finally:
            with self.lock:
                self.active -= 1

    def trickle(self, h: BaseHTTPRequestHandler, head: bytes, byte: bytes, size: int = 100,
                every: float = 0.3) -> None:  # fmt: skip
        """``head``, then ``byte`` every ``every`` seconds (a Graphite or a proxy that
        streams a slow render): each socket read gets a byte well within the read
        timeout, and the whole takes 30 s at the defaults."""
        h.wfile.write(head)
        for _ in range(size):
            if self.closed.wait(every):
                return
            h.wfile.write(byte)
            h.wfile.flush()
            self.trickled += 1

    def gzip_chunked(self, h: BaseHTTPRequestHandler, body: bytes) -> None:
        """The answer gzipped and sent in chunks (HTTP/1.1), as a proxy may send it."""
        h.protocol_version = "HTTP/1.1"
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Encoding", "gzip")
        h.send_header("Transfer-Encoding", "chunked")
        h.send_header("Connection", "close")
        h.end_headers()
        packed = gzip.compress(body)
        for i in range(0, len(packed), 1000):
            part = packed[i : i + 1000]
            h.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
        h.wfile.write(b"0\r\n\r\n")

    def answer(self, path: str) -> tuple[int, bytes]:
        mode = self.mode
        if mode == "hang":
            time.sleep(5)
        if mode == "500":
            return 500, b'{"error": "boom"}'
        if mode == "html":
            return 200, b"<html><body>Graphite is down</body></html>"
        if mode == "big":
            return 200, b"[" + b" " * (2 << 20) + b"]"
        if mode == "deep":
            return 200, b"[" * 200_000 + b"]" * 200_000
        points = [(t, None) for t, _ in self.points] if mode == "nulls" else self.points
        if mode in ("millis", "elsewhen"):  # timestamps a series cannot hold, or other days
            points = [(t * 1000 if mode == "millis" else t - 30 * DAY, v) for t, v in points]
        if path == "/render":
            body = [{"target": "x", "datapoints": [[v, t] for t, v in points]}]
            if mode == "shape":
                body = {"target": "x"}  # type: ignore[assignment]
        else:
            values = [[t, "NaN" if v is None else repr(v)] for t, v in points]
            body = {"status": "success", "data": {"resultType": "matrix",
                    "result": [{"metric": {"__name__": "x"}, "values": values}]}}  # fmt: skip
            if mode == "shape":
                body = {"status": "success", "data": {"resultType": "vector", "result": []}}
        raw = json.dumps(body).encode()
        return 200, raw[: len(raw) // 2] if mode == "truncated" else raw


TRICKLES = {  # mode -> what is sent at once, then the byte trickled
    "trickle": (b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100\r\n\r\n", b" "),  # the body
    "trickle-chunk": (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                      b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n", b"0"),
    "trickle-headers": (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Slow: ", b"a"),
}  # fmt: skip


def remote_points(end: int, days: int = 7) -> list[tuple[int, float | None]]:
    """Minutely points of a metric around 50 ending a day before ``end``, some null."""
    rng = np.random.default_rng(8)
    ts = end - DAY - 60 * np.arange(days * 1440)[::-1]
    vals = 50 + rng.normal(0, 1, len(ts))
    return [
        (int(t), None if i % 97 == 0 else float(v))
        for i, (t, v) in enumerate(zip(ts, vals, strict=True))
    ]


@pytest.fixture
def server():
    s = HistoryServer([])
    yield s
    s.close()


def make(make_settings, tmp_path, **env: str):
    base = {"SKYLINE__MIRAGE__INTERVAL": "0.1", "SKYLINE__MIRAGE__REMOTE_CONNECT_TIMEOUT": "0.5",
            "SKYLINE__MIRAGE__REMOTE_READ_TIMEOUT": "0.5", "SKYLINE__MIRAGE__REMOTE_ATTEMPTS": "2"}  # fmt: skip
    return pipeline_settings(make_settings, tmp_path, CONF, **{**base, **env})


@pytest.mark.parametrize("mode", ["ok", "gzip-chunked"])
@pytest.mark.parametrize("source", ["graphite", "prometheus"])
def test_a_remote_window_is_fetched_and_joined_to_the_raw_day(make_settings, tmp_path, server,
                                                             redis_client, source, mode):  # fmt: skip
    settings = make(
        make_settings, tmp_path, **{f"SKYLINE__MIRAGE__{source.upper()}_URL": server.url}
    )
    store = TimeSeriesStore(redis_client, _keys(settings))
    end = bucket_end(60)
    history_of_days(store, "shop.remote", 50 + np.zeros(1441), end)
    server.points, server.mode = remote_points(end), mode
    counters = Counters()
    window = HistorySource(store, settings, counters).window("shop.remote", end - 7 * DAY, end)
    assert window.source == source and window.note == ""
    assert counters.peek() == {f"history_source.{source}": 1}
    req = server.requests[-1]
    if source == "graphite":
        assert req == {"path": "/render", "target": "shop.remote", "from": str(end - 7 * DAY),
                       "until": str(end), "format": "json"}  # fmt: skip
    else:
        assert req["path"] == "/api/v1/query_range" and req["step"] == "600"
        assert req["query"] == promql("shop.remote") == "shop_remote"
    # remote buckets before the raw day's first whole bucket, then the raw day
    raw_start = int(store.read("shop.remote").timestamps[0])
    cut = -(-raw_start // RES) * RES
    good = [(t, v) for t, v in server.points if v is not None]
    older = downsample(np.array([t for t, _ in good]), np.array([v for _, v in good]), RES)
    keep = (older.timestamps >= end - 7 * DAY) & (older.timestamps < cut)
    t = window.series.timestamps
    assert np.array_equal(t[: keep.sum()], older.timestamps[keep])
    assert np.allclose(window.series.values[: keep.sum()], older.values[keep])
    assert np.all(window.series.values[keep.sum() :] == 50.0) and t[-1] == end - end % RES


FAILURES = {
    "hang": "ReadTimeout",
    "500": "HTTP 500",
    "html": "not JSON",
    "truncated": "not JSON",
    "shape": "",
    "nulls": "no finite datapoint",
    "big": "larger than",
    "deep": "nested too deeply",
    "millis": "no finite datapoint",
    "elsewhen": "no datapoint in the window",
}


@pytest.mark.parametrize("source", ["graphite", "prometheus"])
@pytest.mark.parametrize("mode", list(FAILURES))
def test_a_failed_fetch_is_counted_and_the_rollups_are_read(make_settings, tmp_path, server,
                                                           redis_client, source, mode):  # fmt: skip
    # only "hang" needs the short timeouts; with them, a first try that a busy machine
    # slows past 1 s would be tried again, and the count of tries below would be off
    slack = {} if mode == "hang" else {"SKYLINE__MIRAGE__REMOTE_CONNECT_TIMEOUT": "10",
                                       "SKYLINE__MIRAGE__REMOTE_READ_TIMEOUT": "10"}  # fmt: skip
    settings = make(make_settings, tmp_path, SKYLINE__MIRAGE__REMOTE_MAX_BYTES="1048576",
                    **{f"SKYLINE__MIRAGE__{source.upper()}_URL": server.url}, **slack)  # fmt: skip
    store = TimeSeriesStore(redis_client, _keys(settings))
    end = bucket_end(60)
    history_of_days(store, "shop.remote", 50 + np.arange(3 * 1440 + 1) % 7, end)
    server.points, server.mode = remote_points(end), mode
    counters = Counters()
    history = HistorySource(store, settings, counters)
    window = history.window("shop.remote", end - 7 * DAY, end)
    assert window.source == "rollups"
    assert window.note.startswith(f"{source} fetch failed (") and FAILURES[mode] in window.note
    # transport failures and answers that are not JSON are tried again; a JSON answer
    # of the wrong shape or without data would come back the same: not retried
    tries = 1 if mode in ("shape", "nulls", "millis", "elsewhen") else 2
    assert window.note.endswith("(after 2 tries)): used the rollups" if tries == 2 else
                                "): used the rollups")  # fmt: skip
    assert len(server.requests) == tries
    counts = counters.peek()
    assert counts["fetch_failures"] == counts[f"fetch_failures.{source}"] == 1
    assert counts["history_source.rollups"] == 1
    assert np.array_equal(window.series.timestamps,
                          history.rollups.history("shop.remote", end - 7 * DAY, end).timestamps)  # fmt: skip
    assert len(window.series) == 3 * 144  # the first, cut, bucket is left out


def test_a_refused_connection_is_a_failure(make_settings, tmp_path, redis_client):
    with socket.socket() as bound:  # bound, never listening: connecting is refused
        bound.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{bound.getsockname()[1]}"
        settings = make(make_settings, tmp_path, SKYLINE__MIRAGE__GRAPHITE_URL=url)
        counters = Counters()
        window = HistorySource(TimeSeriesStore(redis_client, _keys(settings)), settings,
                               counters).window("shop.x", 0, 1000)  # fmt: skip
    assert window.source == "rollups" and "ConnectionError" in window.note
    assert counters.peek()["fetch_failures.graphite"] == 1


def test_the_daemon_says_in_the_verdict_that_it_fell_back(make_settings, tmp_path, server):
    settings = make(make_settings, tmp_path, SKYLINE__MIRAGE__GRAPHITE_URL=server.url)
    server.mode = "500"
    with running(Mirage(settings)) as mirage:
        mirage.redis.xadd(mirage.keys.mirage_stream(), anomaly("shop.fallback").to_fields())
        wait_for(lambda: alerts(mirage.redis, mirage.keys))
    reason = verdicts(mirage.redis, mirage.keys)[-1].reason
    assert reason.startswith("insufficient history: 0 of 1008 buckets")
    assert reason.endswith("graphite fetch failed (HTTP 500 (after 2 tries)): used the rollups")


def test_checks_run_concurrently_bounded_by_workers_and_max_inflight(make_settings, tmp_path,
                                                                    server):  # fmt: skip
    settings = make(make_settings, tmp_path, SKYLINE__MIRAGE__GRAPHITE_URL=server.url,
                    SKYLINE__MIRAGE__REMOTE_READ_TIMEOUT="20", SKYLINE__MIRAGE__WORKERS="3",
                    SKYLINE__MIRAGE__MAX_INFLIGHT="4")  # fmt: skip
    server.hold = threading.Event()
    server.points = remote_points(int(time.time()))
    with running(Mirage(settings)) as mirage:
        for i in range(6):
            mirage.redis.xadd(mirage.keys.mirage_stream(), anomaly(f"shop.c{i}").to_fields())
        wait_for(lambda: server.active == 3 and mirage.consumer.pending_count() == 4)
        assert len(mirage.inflight) == 4 and server.max_active == 3
        server.hold.set()
        wait_for(lambda: len(verdicts(mirage.redis, mirage.keys)) == 6, timeout=20)
        wait_for(lambda: mirage.consumer.pending_count() == 0)
    assert server.max_active == 3 and len(server.requests) == 6
    assert sorted(v.metric for v in verdicts(mirage.redis, mirage.keys)) == [
        f"shop.c{i}" for i in range(6)]  # fmt: skip


def _keys(settings):
    from skyline.store.keys import RedisKeys

    return RedisKeys(settings.redis.prefix)


@pytest.mark.parametrize("source", ["graphite", "prometheus"])
@pytest.mark.parametrize("mode", list(TRICKLES))
def test_a_trickling_server_is_cut_off_at_the_deadline(make_settings, tmp_path, server,
                                                      redis_client, source, mode):  # fmt: skip
    """A byte every 0.3 s -- of the body, of a chunk-size line, of a header line --
    keeps every socket read under the 1 s read timeout; the watchdog still cuts the
    try at its deadline (connect + read timeout), not when the 30 s trickle ends: a
    counted failure that says so, and the rollups are read."""
    settings = make(make_settings, tmp_path, SKYLINE__MIRAGE__REMOTE_READ_TIMEOUT="1",
                    SKYLINE__MIRAGE__REMOTE_ATTEMPTS="1",
                    **{f"SKYLINE__MIRAGE__{source.upper()}_URL": server.url})  # fmt: skip
    server.mode = mode
    counters = Counters()
    store = TimeSeriesStore(redis_client, _keys(settings))
    window = HistorySource(store, settings, counters).window("shop.slow", 0, 1000)
    assert window.source == "rollups"
    assert window.note == (f"{source} fetch failed (no complete response within the 1.5 s "
                           "deadline (remote_connect_timeout + remote_read_timeout) "
                           "(after 1 tries)): used the rollups")  # fmt: skip
    counts = counters.peek()
    assert counts["fetch_failures"] == counts[f"fetch_failures.{source}"] == 1
    assert counts["history_source.rollups"] == 1 and len(server.requests) == 1
    assert server.trickled < 100  # cut, not read to its end


def test_a_check_whose_fetch_outlasts_max_check_age_is_passed_on_unconfirmed(
    make_settings, tmp_path, server
):
    """max_check_age is tested again once the check is judged: a check that became
    too old while its history was fetched is alerted unconfirmed, counted as expired,
    not cleared or confirmed on its late judgement."""
    settings = make(make_settings, tmp_path, SKYLINE__MIRAGE__GRAPHITE_URL=server.url,
                    SKYLINE__MIRAGE__REMOTE_READ_TIMEOUT="20")  # fmt: skip
    server.hold = threading.Event()
    server.points = remote_points(int(time.time()))
    skew = {"s": 0.0}  # mirage's clock jumps while the fetch is held: the fetch "took" it
    late = anomaly("shop.late")
    with running(Mirage(settings, clock=lambda: time.time() + skew["s"])) as mirage:
        mirage.redis.xadd(mirage.keys.mirage_stream(), late.to_fields())
        wait_for(lambda: server.active == 1)
        skew["s"] = settings.mirage.max_check_age + 5.0
        server.hold.set()
        wait_for(lambda: mirage.counters.peek().get("expired") == 1)
        wait_for(lambda: mirage.consumer.pending_count() == 0)
        counts = mirage.counters.peek()
    assert counts["checks"] == counts["history_source.graphite"] == 1
    assert "cleared" not in counts and "confirmed" not in counts
    assert trail(mirage.redis, mirage.keys, "shop.late") == [("mirage", "sent_to_alerters")]
    reason = verdicts(mirage.redis, mirage.keys)[-1].reason
    assert reason.startswith("expired after 30") and "alerted unconfirmed" in reason, reason
    assert [a.id for a in alerts(mirage.redis, mirage.keys)] == [late.id]


def test_stop_leaves_unfinished_checks_pending_for_the_next_mirage(make_settings, tmp_path,
                                                                  server):  # fmt: skip
    """A stop while a fetch hangs (20 s read timeout) cuts it: the check running
    publishes nothing and has ended when the daemon has stopped (nothing left for the
    interpreter to wait for at exit), the queued ones are cancelled, all stay pending
    and no fetch failure is counted; the next mirage takes them over (claim_idle) and
    judges each once."""
    settings = make(make_settings, tmp_path, SKYLINE__MIRAGE__GRAPHITE_URL=server.url,
                    SKYLINE__MIRAGE__REMOTE_READ_TIMEOUT="20", SKYLINE__MIRAGE__WORKERS="1",
                    SKYLINE__MIRAGE__CLAIM_IDLE="1")  # fmt: skip
    server.hold = threading.Event()
    with running(Mirage(settings)) as mirage:
        for i in range(3):
            mirage.redis.xadd(mirage.keys.mirage_stream(), anomaly(f"shop.s{i}").to_fields())
        wait_for(lambda: server.active == 1 and len(mirage.inflight) == 3)
        checks = list(mirage.inflight.values())
    assert all(f.done() for f in checks), "a check was still running after the stop"
    assert sum(f.cancelled() for f in checks) == 2
    assert mirage.consumer.pending_count() == 3
    counts = mirage.redis.hgetall(mirage.keys.counters("mirage"))  # published at stop
    assert float(counts[b"checks"]) == 1 and b"fetch_failures" not in counts, counts
    assert b"errors" not in counts and b"confirmed" not in counts
    server.mode = "500"
    server.hold.set()  # the held request ends: nothing may come of it
    with running(Mirage(settings)) as second:
        wait_for(lambda: len(alerts(second.redis, second.keys)) == 3, timeout=20)
        wait_for(lambda: second.consumer.pending_count() == 0)
    assert sorted(v.metric for v in verdicts(second.redis, second.keys)) == [
        f"shop.s{i}" for i in range(3)]  # fmt: skip


def test_a_window_in_minutes_is_fetched_in_minutes(make_settings, tmp_path, server, redis_client):
    """A rule's ``mirage_resolution`` finer than the rollups: Prometheus is asked for
    that step, and the remote part and the raw day are both in minutes."""
    settings = make(make_settings, tmp_path, SKYLINE__MIRAGE__PROMETHEUS_URL=server.url)
    store = TimeSeriesStore(redis_client, _keys(settings))
    end = bucket_end(60)
    history_of_days(store, "shop.minutes", 50 + np.zeros(1441), end)
    server.points = remote_points(end, days=2)
    window = HistorySource(store, settings, Counters()).window("shop.minutes", end - 2 * DAY,
                                                               end, 60)  # fmt: skip
    assert window.source == "prometheus" and server.requests[-1]["step"] == "60"
    assert set(np.diff(window.series.timestamps)) == {60, 120}  # 120: a null left out
    assert window.series.timestamps[-1] == end and len(window.series) > 2 * 1440 * 0.95
