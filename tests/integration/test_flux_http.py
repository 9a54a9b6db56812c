"""flux's HTTP API on a real server (threaded), real Redis and SQLite: the flux API,
telegraf JSON, Influx line protocol, limits and hostile input."""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests

from skyline.db import make_engine, migrate
from skyline.ingest.flux.agent import Flux
from skyline.ingest.flux.keys import add_key, revoke_key
from skyline.settings import Settings
from tests.conftest import fail_once, free_port, wait_for


def flux_env(**extra: str) -> dict[str, str]:
    return {
        "SKYLINE__FLUX__PORT": str(free_port()),
        "SKYLINE__FLUX__STATSD_PORT": str(free_port()),
        "SKYLINE__FLUX__HTTP_SERVER": "threaded",
        "SKYLINE__FLUX__STATSD_FLUSH_INTERVAL": "0.3",
        "SKYLINE__FLUX__KEY_CACHE_TTL": "0.2",
        "SKYLINE__SKYLINE__RETRY_BACKOFF_MAX": "0.2",
        **extra,
    }


@contextmanager
def running_flux(settings: Settings) -> Iterator[Flux]:
    daemon = Flux(settings)
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    wait_for(lambda: getattr(daemon, "http", None) is not None)
    try:
        yield daemon
    finally:
        daemon.stop()
        thread.join(20)
        assert not thread.is_alive(), "flux did not stop"


class Flx:
    def __init__(self, daemon: Flux, key: str, engine: object) -> None:
        self.daemon, self.key, self.engine = daemon, key, engine
        self.url = f"http://127.0.0.1:{daemon.ports['port']}"
        self.http = requests.Session()

    def get(self, path: str, **params: object) -> requests.Response:
        return self.http.get(self.url + path, params=params, timeout=10)

    def post(self, path: str, body: object = None, *, data: bytes | None = None,
             headers: dict[str, str] | None = None, key: bool = True) -> requests.Response:  # fmt: skip
        h = {"key": self.key} if key else {}
        h.update(headers or {})
        if data is None:
            data = json.dumps(body).encode()
        return self.http.post(self.url + path, data=data, headers=h, timeout=10)

    def series(self, name: str) -> list[list[float]]:
        return self.daemon.store.read(name).pairs()


def start_flux(make_settings, **env: str):
    settings = make_settings(**flux_env(**env))
    migrate.upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    _, key = add_key(engine, "tenant", "tests")
    return settings, key, engine


@pytest.fixture
def flux(make_settings) -> Iterator[Flx]:
    settings, key, engine = start_flux(
        make_settings, SKYLINE__FLUX__MAX_METRICS_PER_REQUEST="500",
        SKYLINE__FLUX__MAX_BODY_BYTES="200000", SKYLINE__FLUX__MAX_DECOMPRESSED_BYTES="400000",
    )  # fmt: skip
    with running_flux(settings) as daemon:
        yield Flx(daemon, key, engine)


def now() -> int:
    return int(time.time())


def test_get_metric_data_stores_under_the_key_namespace(flux: Flx) -> None:
    t = now()
    r = flux.get("/flux/metric_data", metric="app.requests", timestamp=t, value="3.5", key=flux.key)
    assert r.status_code == 204, r.text
    assert flux.series("tenant.app.requests") == [[t, 3.5]]
    assert b"tenant.app.requests" in flux.daemon.redis.smembers(flux.daemon.keys.changed())
    assert flux.get("/flux/metric_data", status="true").status_code == 204


def test_post_single_batch_gzip_and_json_key(flux: Flx) -> None:
    t = now()
    single = {"key": flux.key, "metric": "a.single", "timestamp": t, "value": 1}
    assert flux.post("/flux/metric_data_post", single, key=False).status_code == 204
    batch = {"metrics": [{"metric": "a.batch", "timestamp": t - i, "value": i} for i in range(5)]}
    body = gzip.compress(json.dumps(batch).encode())
    r = flux.post("/flux/metric_data_post", data=body, headers={"Content-Encoding": "gzip"})
    assert r.status_code == 204, r.text
    assert flux.series("tenant.a.single") == [[t, 1.0]]
    assert len(flux.series("tenant.a.batch")) == 5


def test_mixed_batch_is_207_and_keeps_the_valid(flux: Flx) -> None:
    t = now()
    metrics = [
        {"metric": "ok.one", "timestamp": t, "value": 1},
        {"metric": "bad name!", "timestamp": t, "value": 1},
        {"metric": "ok.two", "timestamp": t, "value": "nope"},
        {"metric": "ok.three", "timestamp": t - 7200, "value": 1},
        {"metric": "ok.four", "timestamp": t + 3600, "value": 1},
        "not an object",
        {"metric": "ok.five", "value": 1},
        {"metric": "ok.six", "timestamp": t, "value": True},
    ]
    r = flux.post("/flux/metric_data_post", {"metrics": metrics})
    assert r.status_code == 207, r.text
    body = r.json()
    assert body["accepted"] == 1 and body["rejected"] == 7
    reasons = {e["index"]: e["reason"] for e in body["errors"]}
    assert reasons == {1: "name_charset", 2: "value_not_numeric", 3: "timestamp_too_old",
                       4: "timestamp_in_future", 5: "not_an_object", 6: "missing_timestamp",
                       7: "value_not_numeric"}  # fmt: skip
    assert flux.series("tenant.ok.one") == [[t, 1.0]]
    assert flux.series("tenant.ok.three") == []


def test_a_series_key_of_another_type_refuses_only_its_points(flux: Flx) -> None:
    """Something else wrote a hash where a metric's series lives: that metric's points
    are refused (a reasoned 207, or 400 when nothing else was sent) and counted; the
    others are stored."""
    t = now()
    redis_client, keys = flux.daemon.redis, flux.daemon.keys
    redis_client.hset(keys.series("tenant.foreign"), "f", "v")
    metrics = [{"metric": "foreign", "timestamp": t - i, "value": i} for i in range(2)]
    r = flux.post(
        "/flux/metric_data_post",
        {"metrics": [*metrics, {"metric": "mine", "timestamp": t, "value": 4}]},
    )
    assert r.status_code == 207, r.text
    body = r.json()
    assert body["accepted"] == 1 and body["reasons"] == {"series_key_wrong_type": 2}
    assert body["errors"] == [{"reason": "series_key_wrong_type", "metric": "tenant.foreign",
                               "points": 2}]  # fmt: skip
    assert flux.series("tenant.mine") == [[t, 4.0]]
    r = flux.post("/flux/metric_data_post", {"metrics": metrics})
    assert r.status_code == 400 and r.json()["reasons"] == {"series_key_wrong_type": 2}, r.text
    assert redis_client.type(keys.series("tenant.foreign")) == b"hash"


def test_fill_accepts_old_and_test_mode_writes_nothing(flux: Flx) -> None:
    t = now() - 7200
    r = flux.post("/flux/metric_data_post", {"fill": True, "metrics": [
        {"metric": "old.one", "timestamp": t, "value": 2}]})  # fmt: skip
    assert r.status_code == 204, r.text
    r = flux.post("/flux/metric_data_post", {"test": True, "metrics": [
        {"metric": "t.one", "timestamp": now(), "value": 2}]})  # fmt: skip
    assert r.status_code == 200
    assert r.json()["would_ingest"][0][0] == "tenant.t.one"
    assert flux.series("old.one") == [] and flux.series("tenant.old.one") == [[t, 2.0]]
    assert flux.series("tenant.t.one") == []


def _bomb() -> bytes:
    return gzip.compress(b"0" * 5_000_000)


HOSTILE = [
    # (description, method, path, kwargs, status, reason)
    ("no key", "post", "/flux/metric_data_post", {"body": {"metric": "x", "timestamp": 1, "value": 1}, "key": False}, 401, "missing_key"),
    ("unknown key", "post", "/flux/metric_data_post", {"body": {"metric": "x"}, "headers": {"key": "A" * 32}}, 401, "invalid_key"),
    ("short key", "post", "/flux/metric_data_post", {"body": {}, "headers": {"key": "abc"}}, 401, "invalid_key"),
    ("malformed JSON", "post", "/flux/metric_data_post", {"data": b'{"metrics": [1,'}, 400, "malformed_json"),
    ("deep JSON", "post", "/flux/metric_data_post", {"data": b"[" * 100000}, 400, "malformed_json"),
    ("not an object", "post", "/flux/metric_data_post", {"body": [1, 2]}, 400, "not_an_object"),
    ("metrics not a list", "post", "/flux/metric_data_post", {"body": {"metrics": "x"}}, 400, "metrics_not_a_list"),
    ("all invalid", "post", "/flux/metric_data_post", {"body": {"metrics": [{"metric": "", "timestamp": 1, "value": 1}]}}, 400, "invalid_datapoints"),
    ("gzip bomb", "post", "/flux/metric_data_post", {"data": _bomb(), "headers": {"Content-Encoding": "gzip"}}, 413, "decompressed_too_large"),
    ("truncated gzip", "post", "/flux/metric_data_post", {"data": gzip.compress(b'{"a": 1}')[:-6], "headers": {"Content-Encoding": "gzip"}}, 400, "bad_gzip"),
    ("not gzip", "post", "/flux/metric_data_post", {"data": b"plain", "headers": {"Content-Encoding": "gzip"}}, 400, "bad_gzip"),
    ("brotli", "post", "/flux/metric_data_post", {"data": b"x", "headers": {"Content-Encoding": "br"}}, 415, "unsupported_encoding"),
    ("body too large", "post", "/flux/metric_data_post", {"data": b" " * 300000}, 413, "body_too_large"),
    ("too many metrics", "post", "/flux/metric_data_post", {"body": {"metrics": [{}] * 501}}, 413, "too_many_metrics"),
    ("GET missing value", "get", "/flux/metric_data", {"params": {"metric": "x", "timestamp": "1"}}, 400, "missing_parameter"),
    ("GET bad value", "get", "/flux/metric_data", {"params": {"metric": "x", "timestamp": "NOW", "value": "1"}}, 400, "invalid_datapoints"),
    ("unknown path", "get", "/flux/nothing", {}, 404, "Not Found"),
    ("influx garbage", "post", "/flux/influx/write", {"data": b"cpu\n,,,\n"}, 400, "invalid_datapoints"),
    ("influx not utf8", "post", "/flux/influx/write", {"data": b"\xff\xfe"}, 400, "invalid_datapoints"),
]  # fmt: skip


def test_hostile_input_gets_a_reasoned_4xx_and_flux_stays_up(flux: Flx) -> None:
    for what, method, path, kw, status, reason in HOSTILE:
        if method == "get":
            r = flux.get(path, **{"key": flux.key, **kw.get("params", {})})
        else:
            r = flux.post(path, kw.get("body"), data=kw.get("data"), headers=kw.get("headers"),
                          key=kw.get("key", True))  # fmt: skip
        assert (r.status_code, r.json()["reason"]) == (status, reason), f"{what}: {r.text}"
        ok = flux.get("/flux/metric_data", metric="alive", timestamp=now(), value=1, key=flux.key)
        assert ok.status_code == 204, what
    counts = flux.daemon.counters.peek()
    assert counts["refused.invalid_key"] == 2 and counts["responses.413"] == 3


def raw_request(flux: Flx, head: bytes, body: bytes = b"") -> tuple[int, dict]:
    """Send bytes no HTTP client would (a header that is not UTF-8, broken chunking);
    the status and the JSON body of the answer."""
    with socket.create_connection(("127.0.0.1", flux.daemon.ports["port"]), timeout=10) as s:
        s.sendall(head + b"\r\n" + body)
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    status = int(reply.split(b" ", 2)[1])
    return status, json.loads(reply.split(b"\r\n\r\n", 1)[1] or b"{}")


def test_raw_hostile_requests_get_a_reasoned_4xx(flux: Flx) -> None:
    """Basic credentials that are not UTF-8 are no key (a 401); a chunked body with a
    broken chunk size is a 400; nothing is stored; test mode's header is read in any case."""
    path = b"/flux/metric_data?metric=raw&timestamp=%d&value=1" % now()
    status, body = raw_request(flux, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n"
                               b"Authorization: Basic \xff\xfe\r\nConnection: close\r\n")  # fmt: skip
    assert (status, body["reason"]) == (401, "missing_key")
    status, body = raw_request(
        flux, b"POST /flux/metric_data_post HTTP/1.1\r\nHost: x\r\nkey: " + flux.key.encode()
        + b"\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n", b"zz\r\n{}\r\n0\r\n\r\n",
    )  # fmt: skip
    assert (status, body["reason"]) == (400, "bad_body")
    r = flux.post("/flux/influx/write?precision=s", data=f"tested v=1 {now()}\n".encode(),
                  headers={"X-Test-Only": "TRUE"})  # fmt: skip
    assert r.status_code == 200 and r.json()["test"] is True
    assert flux.series("tenant.raw") == [] and flux.series("tenant.tested.v") == []


def test_revoked_key_is_refused(flux: Flx) -> None:
    key_id, key = add_key(flux.engine, "other")
    body = {"metric": "m", "timestamp": now(), "value": 1}
    assert flux.post("/flux/metric_data_post", body, headers={"key": key}).status_code == 204
    assert flux.series("other.m")
    assert revoke_key(flux.engine, key_id)
    time.sleep(0.3)
    r = flux.post("/flux/metric_data_post", body, headers={"key": key})
    assert r.status_code == 401 and r.json()["reason"] == "invalid_key"


def test_rate_limit_answers_429(make_settings) -> None:
    settings, key, _ = start_flux(
        make_settings, SKYLINE__FLUX__RATE_LIMIT="10", SKYLINE__FLUX__RATE_LIMIT_WINDOW="60"
    )
    if time.time() % 60 > 50:  # both posts in one clock-aligned 60 s window
        time.sleep(60 - time.time() % 60 + 0.1)
    with running_flux(settings) as daemon:
        flux = Flx(daemon, key, None)
        metrics = [{"metric": f"r.{i}", "timestamp": now(), "value": i} for i in range(400)]
        assert flux.post("/flux/metric_data_post", {"metrics": metrics}).status_code == 204
        r = flux.post("/flux/metric_data_post", {"metrics": metrics})
        assert r.status_code == 429 and r.json()["reason"] == "rate_limited"
        assert int(r.headers["Retry-After"]) >= 1
        assert daemon.counters.peek()["refused.rate_limited"] == 1


def test_telegraf_json_and_influx_line_protocol(flux: Flx) -> None:
    t = now()
    telegraf = {"metrics": [{"name": "cpu", "timestamp": t,
                             "tags": {"host": "web.1", "cpu": "cpu0"},
                             "fields": {"usage_idle": 97.5, "state": "ok", "up": True}}]}  # fmt: skip
    r = flux.post("/flux/metric_data_post", telegraf, headers={"telegraf": "true"})
    assert r.status_code == 207, r.text
    assert r.json()["reasons"] == {"field_not_numeric": 2}
    assert flux.series("tenant.web_1.cpu0.cpu.usage_idle") == [[t, 97.5]]
    lines = (f"mem,host=h1,region=eu\\ west used=10i,free=2.5,name=\"x y\" {t}000000000\n"
             f"disk,host=h1,path=/var value=3 {t}000000000\n")  # fmt: skip
    r = flux.post("/flux/influx/write?db=telegraf", data=lines.encode())
    assert r.status_code == 207, r.text
    assert flux.series("tenant.telegraf.h1.eu_west.mem.used") == [[t, 10.0]]
    assert flux.series("tenant.telegraf.h1.eu_west.mem.free") == [[t, 2.5]]
    assert flux.series("tenant.telegraf.h1.-var.disk") == [[t, 3.0]]
    r = flux.post("/flux/influx/write?precision=s", data=f"x v=1 {t}\n".encode())
    assert r.status_code == 204 and flux.series("tenant.x.v") == [[t, 1.0]]


def test_cli_keys_add_list_revoke(make_settings, capsys) -> None:
    import argparse

    from skyline.ingest.flux import cli

    settings = make_settings()
    migrate.upgrade(settings.database_url)
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))

    def run(*argv: str) -> tuple[int, object]:
        code = cli.run(parser.parse_args(["flux", "keys", *argv]), settings)
        return code, json.loads(capsys.readouterr().out)

    code, added = run("add", "--namespace", "team.a", "--description", "ci", "--json")
    assert code == 0 and len(added["key"]) == 32
    code, listed = run("list", "--json")
    assert [(k["id"], k["namespace"], k["revoked_at"]) for k in listed] == [
        (added["id"], "team.a", None)]  # fmt: skip
    assert added["key"] not in json.dumps(listed)
    assert run("revoke", str(added["id"]), "--json") == (0, {"id": added["id"], "revoked": True})
    assert run("revoke", str(added["id"]), "--json")[0] == 1


@pytest.mark.parametrize("bug", [False, True])
def test_forwarding_to_a_graphite_pickle_receiver(make_settings, monkeypatch, bug) -> None:
    """Accepted points are forwarded; with ``bug``, sending the first chunk raises (a
    bug, forced): that chunk is dropped and counted, and the forwarder goes on."""
    import pickle
    import struct

    receiver = socket.create_server(("127.0.0.1", 0))
    port = receiver.getsockname()[1]
    settings, key, _ = start_flux(
        make_settings, SKYLINE__FLUX__FORWARD_GRAPHITE=f"127.0.0.1:{port}"
    )
    with running_flux(settings) as daemon:
        flux = Flx(daemon, key, None)
        t = now()
        if bug:
            fail_once(monkeypatch, daemon.forwarder, "_send", RuntimeError("a bug in forwarding"))
            lost = {"metrics": [{"metric": "fw.lost", "timestamp": t, "value": 0.5}]}
            assert flux.post("/flux/metric_data_post", lost).status_code == 204
            wait_for(lambda: daemon.counters.peek().get("forward.dropped") == 1)
            assert daemon.forwarder.is_alive() and daemon.counters.peek()["errors"] == 1
        body = {"metrics": [{"metric": "fw.a", "timestamp": t, "value": 1.5}]}
        assert flux.post("/flux/metric_data_post", body).status_code == 204
        receiver.settimeout(10)
        conn, _ = receiver.accept()
        with conn:
            conn.settimeout(10)
            (size,) = struct.unpack("!L", conn.recv(4, socket.MSG_WAITALL))
            frame = pickle.loads(conn.recv(size, socket.MSG_WAITALL))  # noqa: S301 - our own test data
    receiver.close()
    assert frame == [("tenant.fw.a", (float(t), 1.5))]


HUGE = 10**400  # JSON and line protocol can carry integers no float can hold
HUGE_JSON_ITEMS = [
    ({"metric": "huge.value", "timestamp": "{t}", "value": HUGE}, "value_not_finite"),
    ({"metric": "huge.negative", "timestamp": "{t}", "value": -HUGE}, "value_not_finite"),
    ({"metric": "huge.ts", "timestamp": HUGE, "value": 1}, "timestamp_not_numeric"),
    ({"metric": "huge.negative.ts", "timestamp": -HUGE, "value": 1}, "timestamp_not_numeric"),
]
HUGE_INFLUX_LINES = [
    (f"huge value={HUGE}i {{t}}", "value_not_finite"),
    (f"huge value={HUGE} {{t}}", "value_not_finite"),
    (f"huge value=1 {HUGE}", "timestamp_not_numeric"),
    (f"huge value=1 -{HUGE}", "timestamp_not_numeric"),
]


def test_huge_numbers_are_rejected_alone_with_207(flux: Flx) -> None:
    t = now()
    bad = [{k: t if v == "{t}" else v for k, v in item.items()} for item, _ in HUGE_JSON_ITEMS]
    ok = {"metric": "json.ok", "timestamp": t, "value": 1}
    r = flux.post("/flux/metric_data_post", {"metrics": [*bad, ok]})
    assert r.status_code == 207, r.text
    assert [e["reason"] for e in r.json()["errors"]] == [reason for _, reason in HUGE_JSON_ITEMS]
    telegraf = {"metrics": [{"name": "tg", "timestamp": HUGE, "fields": {"a": 1}},
                            {"name": "tg", "timestamp": t, "fields": {"b": HUGE, "c": 2}}]}  # fmt: skip
    r = flux.post("/flux/metric_data_post", telegraf, headers={"telegraf": "true"})
    assert r.status_code == 207, r.text
    assert r.json()["reasons"] == {"timestamp_not_numeric": 1, "value_not_finite": 1}
    lines = [line.replace("{t}", str(t)) for line, _ in HUGE_INFLUX_LINES] + [f"good v=3 {t}"]
    r = flux.post("/flux/influx/write?precision=s", data="\n".join(lines).encode())
    assert r.status_code == 207, r.text
    assert [e["reason"] for e in r.json()["errors"]] == [reason for _, reason in HUGE_INFLUX_LINES]
    assert flux.series("tenant.json.ok") == [[t, 1.0]]
    assert flux.series("tenant.tg.c") == [[t, 2.0]]
    assert flux.series("tenant.good.v") == [[t, 3.0]]


# Issue 15 item 4: a body that inflates to a huge line is refused before it is parsed.
LONG_INFLUX_LINES = [
    "m,tag=" + "a\\ " * 24_000 + " value=1 {t}",  # escapes: the slow path of the splitter
    "m,tag=" + "x" * 70_000 + " value=1 {t}",
    'm s="' + "q" * 70_000 + '",value=1 {t}',
    "m " + ",".join(f"f{i}=1" for i in range(10_000)) + " {t}",
]


def test_overlong_influx_lines_are_refused_unparsed(flux: Flx) -> None:
    t = now()
    lines = [f"before v=1 {t}", *(line.replace("{t}", str(t)) for line in LONG_INFLUX_LINES),
             f"after v=2 {t}"]  # fmt: skip
    body = gzip.compress("\n".join(lines).encode())
    r = flux.post("/flux/influx/write?precision=s", data=body,
                  headers={"Content-Encoding": "gzip"})  # fmt: skip
    assert r.status_code == 207, r.text
    assert r.json()["reasons"] == {"malformed.line_too_long": len(LONG_INFLUX_LINES)}
    assert flux.series("tenant.before.v") == [[t, 1.0]]
    assert flux.series("tenant.after.v") == [[t, 2.0]]


def test_a_line_that_is_not_utf8_costs_only_itself(flux: Flx) -> None:
    """Found by utils/fuzz: one undecodable line used to refuse the whole body with 400,
    losing the good lines around it.  Lines are split on "\\n" only (a \\x1d inside a
    line is not a line break, as str.splitlines would have it)."""
    t = now()
    body = f"before v=1 {t}\n".encode() + b"\xef\x84 v=3\n" + f"after\x1dx v=2 {t}".encode()
    r = flux.post("/flux/influx/write?precision=s", data=body)
    assert r.status_code == 207, r.text
    assert r.json()["reasons"] == {"malformed.not_utf8": 1}
    assert r.json()["errors"][0]["index"] == "line 2"
    assert flux.series("tenant.before.v") == [[t, 1.0]]
    assert flux.series("tenant.after_x.v") == [[t, 2.0]]
