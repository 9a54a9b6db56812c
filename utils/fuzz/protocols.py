"""One fuzz run per protocol: hostile inputs interleaved with good points.

Every hostile input is followed by one good point sent the same way (the same TCP
connection, the same request body or the same datagram stream), so a hostile input
that takes the good data behind it down with it is seen as good points lost.  A good
point is ``(name, timestamp, value)`` with a name unique to the protocol; ``Ledger``
remembers what should be stored.  Hypothesis draws the hostile inputs (``drive``).
"""

from __future__ import annotations

import json
import pickle
import re
import socket
import struct
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cramjam
import requests
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from utils.fuzz import hostile
from utils.fuzz.stack import FUZZ_PASSWORD, KEY_NAMESPACE, Stack

GOOD_METRICS = 50  # good points are spread over this many metrics per protocol


@dataclass
class Outcome:
    """What one protocol's run saw; ``good_lost`` is filled by ``Ledger.check``."""

    inputs: int = 0
    good_sent: int = 0
    good_lost: int = 0
    http_5xx: int = 0
    responses: Counter[str] = field(default_factory=Counter)
    lost_examples: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"inputs": self.inputs, "good_sent": self.good_sent, "good_lost": self.good_lost,
                "http_5xx": self.http_5xx, "responses": dict(self.responses),
                "lost_examples": self.lost_examples}  # fmt: skip


class Ledger:
    """The good points of one protocol: where each is expected, and the check."""

    def __init__(self, proto: str, stored_prefix: str = "", metrics: int = GOOD_METRICS,
                 age: int = 3000, live: bool = False) -> None:  # fmt: skip
        self.proto = proto
        self.stored_prefix = stored_prefix
        self.metrics = metrics
        # The first point is this old: inside the path's max_age (3600 s by default), with
        # room for n / metrics later timestamps.
        self.t0 = int(time.time()) - age
        # live: each timestamp is ``age`` seconds before the moment it is sent (a path
        # with a short max_age, however long the run), kept increasing per metric.
        self.live = live
        self.age = age
        self.last: dict[str, int] = {}
        self.count = 0
        self.expected: dict[str, dict[int, float]] = defaultdict(dict)
        self.context: dict[int, str] = {}  # good point number -> what was sent with it
        self.current = ""  # the hostile input being sent (for lost_examples)

    def next(self) -> tuple[str, int, float]:
        i = self.count
        self.count += 1
        name = f"good.{self.proto}.m{i % self.metrics}"
        ts = self.t0 + i // self.metrics
        if self.live:
            ts = max(int(time.time()) - self.age, self.last.get(name, 0) + 1)
            self.last[name] = ts
        value = float(i) + 0.5
        self.expected[self.stored_prefix + name][ts] = value
        self.context[i] = self.current
        return name, ts, value

    def check(self, stack: Stack) -> list[str]:
        """Good points not in the store (each name, timestamp and value checked), each
        described by the hostile input sent with it."""
        store = stack.store()
        lost = []
        for name, points in self.expected.items():
            stored = {int(ts): v for ts, v in store.read(name).pairs()}
            lost += [self.context.get(int(v), "?") for ts, v in points.items()
                     if stored.get(ts) != v]  # fmt: skip
        return lost


def drive(
    strategy: st.SearchStrategy,
    n: int,
    seed_: int,
    send: Callable[[object], None],
    ledger: Ledger | None = None,
) -> int:
    """Run ``send`` on ``n`` inputs drawn by hypothesis; returns how many were sent."""
    sent = 0

    @settings(max_examples=n, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @seed(seed_)
    @given(strategy)
    def run(value: object) -> None:
        nonlocal sent
        if ledger is not None:
            ledger.current = repr(value)[:300]
        send(value)
        sent += 1

    run()
    return sent


# -- horizon ------------------------------------------------------------------------------


class _Conn:
    """A TCP connection that is reopened when horizon closes it (as it may on bad framing)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None
        self.reopened = 0

    def send(self, data: bytes) -> bool:
        for _ in range(2):
            if self.sock is None:
                self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            try:
                self.sock.sendall(data)
                return True
            except OSError:
                self.close()
                self.reopened += 1
        return False

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def fuzz_line(stack: Stack, n: int, seed_: int) -> tuple[Outcome, Ledger]:
    out, ledger, conn = Outcome(), Ledger("line"), _Conn(stack.ports["line"])

    def send(bad: object) -> None:
        name, ts, value = ledger.next()
        # The good line goes in the same write as the hostile one: a hostile line that
        # kills the connection takes it down too, which the check then sees.
        if not conn.send(bad + f"{name} {value!r} {ts}\n".encode()):  # type: ignore[operator]
            out.responses["send_failed"] += 1

    out.inputs = drive(hostile.line(), n, seed_, send, ledger)
    conn.close()
    out.good_sent = ledger.count
    return out, ledger


def fuzz_pickle(stack: Stack, n: int, seed_: int) -> tuple[Outcome, Ledger]:
    out, ledger, conn = Outcome(), Ledger("pickle"), _Conn(stack.ports["pickle"])

    def good_frame() -> bytes:
        name, ts, value = ledger.next()
        payload = pickle.dumps([(name, (ts, value))], protocol=2)
        return struct.pack("!L", len(payload)) + payload

    def send(drawn: object) -> None:
        framing, frame = drawn  # type: ignore[misc]
        if framing is not None:  # broken framing: its own connection, then good data
            side = _Conn(stack.ports["pickle"])
            side.send(framing)
            side.close()
        if len(frame) - 4 > stack.settings.horizon.max_pickle_frame:
            # A frame over the limit closes its connection (documented): alone, then good.
            side = _Conn(stack.ports["pickle"])
            side.send(frame)
            side.close()
            frame = b""
        if not conn.send(frame + good_frame()):
            out.responses["send_failed"] += 1

    strategy = st.tuples(st.one_of(st.none(), st.none(), hostile.pickle_framing()),
                         hostile.pickle_frame())  # fmt: skip
    out.inputs = drive(strategy, n, seed_, send, ledger)
    conn.close()
    out.good_sent = ledger.count
    return out, ledger


def _fuzz_datagrams(stack: Stack, port: str, ledger: Ledger, strategy: st.SearchStrategy,
                    n: int, seed_: int, good: Callable[[str, int, float], bytes],
                    ) -> tuple[Outcome, Ledger]:  # fmt: skip
    """A datagram protocol: each hostile datagram, then a good one, paced (UDP has no flow
    control: stay within the socket buffer); the kernel's drops are reported."""
    out = Outcome()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    addr = ("127.0.0.1", stack.ports[port])

    def send(bad: object) -> None:
        datagram = good(*ledger.next())
        try:
            sock.sendto(bad, addr)  # type: ignore[arg-type]
        except OSError:
            out.responses["too_big_to_send"] += 1
        sock.sendto(datagram, addr)
        if ledger.count % 50 == 0:
            time.sleep(0.01)

    drops = udp_drops(stack.ports[port])
    out.inputs = drive(strategy, n, seed_, send, ledger)
    sock.close()
    out.responses["kernel_drops"] = udp_drops(stack.ports[port]) - drops
    out.good_sent = ledger.count
    return out, ledger


def fuzz_udp(stack: Stack, n: int, seed_: int) -> tuple[Outcome, Ledger]:
    return _fuzz_datagrams(stack, "udp", Ledger("udp"), hostile.udp(), n, seed_,
                           lambda name, ts, value: f"{name} {value!r} {ts}\n".encode())  # fmt: skip


def udp_drops(port: int) -> int:
    """Datagrams the kernel dropped for the UDP socket bound to ``port`` (its receive
    buffer was full): lost before any Skyline code saw them."""
    total = 0
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port:
            total += int(fields[-1])
    return total


# -- flux -------------------------------------------------------------------------------------


class _Http:
    def __init__(self, stack: Stack, out: Outcome) -> None:
        self.base = f"http://127.0.0.1:{stack.ports['flux']}"
        self.session = requests.Session()
        self.session.headers["key"] = stack.flux_key
        self.out = out

    def post(self, path: str, body: bytes, headers: dict[str, str], **params: str) -> int:
        try:
            r = self.session.post(self.base + path, data=body, headers=headers, params=params,
                                  timeout=60)  # fmt: skip
        except requests.RequestException as exc:
            self.out.responses[type(exc).__name__] += 1
            return 0
        self.out.responses[str(r.status_code)] += 1
        if r.status_code >= 500:
            self.out.http_5xx += 1
        return r.status_code


def _good_json(ledger: Ledger) -> str:
    name, ts, value = ledger.next()
    return json.dumps({"metric": name, "timestamp": ts, "value": value})


def fuzz_flux_json(stack: Stack, n: int, seed_: int) -> tuple[Outcome, Ledger]:
    out = Outcome()
    ledger, http = Ledger("json", f"{KEY_NAMESPACE}."), _Http(stack, out)

    def send(drawn: object) -> None:
        body, headers = drawn  # type: ignore[misc]
        if b"%GOOD%" in body:  # the good item rides in the same request
            body = body.replace(b"%GOOD%", _good_json(ledger).encode())
            http.post("/flux/metric_data_post", body, headers)
            return
        http.post("/flux/metric_data_post", body, headers)
        good = ('{"metrics":[' + _good_json(ledger) + "]}").encode()
        if http.post("/flux/metric_data_post", good, {"Content-Type": "application/json"}) >= 300:
            out.responses["good_refused"] += 1

    out.inputs = drive(hostile.flux_json_body(), n, seed_, send, ledger)
    out.good_sent = ledger.count
    return out, ledger


def fuzz_influx(stack: Stack, n: int, seed_: int) -> tuple[Outcome, Ledger]:
    out = Outcome()
    # telegraf's Graphite template: measurement.field, with "." in a part made "_".
    ledger, http = Ledger("influx", f"{KEY_NAMESPACE}."), _Http(stack, out)

    def send(drawn: object) -> None:
        body, headers, precision = drawn  # type: ignore[misc]
        name, ts, value = ledger.next()
        measurement, field_ = name.rsplit(".", 1)
        ledger.expected[f"{KEY_NAMESPACE}.{measurement.replace('.', '_')}.{field_}"] = (
            ledger.expected.pop(f"{KEY_NAMESPACE}.{name}")
        )
        scale = {"ms": 1000, "ns": 10**9}.get(precision, 1)
        good = f"\n{measurement.replace('.', '_')} {field_}={value!r} {ts * scale}".encode()
        # A bad precision or an oversized body refuses the whole request (400, 413): the
        # hostile body goes alone, and the good line in a request of its own.
        if precision in ("x", "h") or len(body) + len(good) > stack.settings.flux.max_body_bytes:
            http.post("/flux/influx/write", body, headers, precision=precision)
            http.post("/flux/influx/write", good.lstrip(), headers, precision="s")
            return
        http.post("/flux/influx/write", body + good, headers, precision=precision or "s")

    out.inputs = drive(hostile.influx_body(), n, seed_, send, ledger)
    # One gzip bomb (a 60 MB line from a ~60 KB body) per run: refused, bounded in time.
    http.post("/flux/influx/write", hostile.gzip_bomb(), {"Content-Encoding": "gzip"})
    out.inputs += 1
    out.good_sent = ledger.count
    return out, ledger


def fuzz_remote_write(stack: Stack, n: int, seed_: int) -> tuple[Outcome, Ledger]:
    out = Outcome()
    # [flux] prometheus_max_age is 300 s: timestamps follow the clock.
    ledger = Ledger("rw", f"{KEY_NAMESPACE}.", metrics=250, age=100, live=True)
    http = _Http(stack, out)
    headers = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
               "X-Prometheus-Remote-Write-Version": "0.1.0"}  # fmt: skip

    def good_series() -> tuple[list[tuple[str, str]], list[tuple[float, int]]]:
        name, ts, value = ledger.next()
        prom_name = name.replace(".", "_")
        ledger.expected[f"{KEY_NAMESPACE}.{prom_name}"] = ledger.expected.pop(
            f"{KEY_NAMESPACE}.{name}"
        )
        return [("__name__", prom_name)], [(value, ts * 1000)]

    def send(drawn: object) -> None:
        body, series = drawn  # type: ignore[misc]
        if body is None:  # hostile series and a good one in the same WriteRequest
            raw = hostile.write_request([*series, good_series()])
            http.post("/flux/prometheus/write", bytes(cramjam.snappy.compress_raw(raw)), headers)
            return
        http.post("/flux/prometheus/write", body, headers)
        raw = hostile.write_request([good_series()])
        http.post("/flux/prometheus/write", bytes(cramjam.snappy.compress_raw(raw)), headers)

    out.inputs = drive(hostile.remote_write_body(), n, seed_, send, ledger)
    out.good_sent = ledger.count
    return out, ledger


class StatsdLedger(Ledger):
    """Good StatsD counters: each sent once; the flushed counts must add up."""

    def check(self, stack: Stack) -> list[str]:
        time.sleep(2.5)  # two flush intervals: the last counts are written
        store = stack.store()
        lost: list[str] = []
        for name, points in self.expected.items():
            stored = sum(v for _, v in store.read(f"stats_counts.{name}").pairs())
            lost += ["a counter increment"] * max(0, len(points) - int(stored))
        return lost


def fuzz_statsd(stack: Stack, n: int, seed_: int) -> tuple[Outcome, Ledger]:
    return _fuzz_datagrams(stack, "statsd", StatsdLedger("statsd"), hostile.statsd(), n, seed_,
                           lambda name, ts, value: f"{name}:1|c".encode())  # fmt: skip


# -- webapp ------------------------------------------------------------------------------------


def _login(base: str) -> requests.Session:
    """A browser-like session logged in through the login form (pages need one)."""
    s = requests.Session()
    page = s.get(base + "/login", timeout=30).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    if csrf is None:
        raise RuntimeError("no CSRF token on the login page")
    r = s.post(base + "/login", data={"username": "fuzz", "password": FUZZ_PASSWORD,
               "csrf_token": csrf.group(1)}, allow_redirects=False, timeout=30)  # fmt: skip
    if r.status_code != 302:
        raise RuntimeError(f"login failed: HTTP {r.status_code}")
    return s


def fuzz_webapp(stack: Stack, n: int, seed_: int) -> tuple[Outcome, Ledger]:
    """Every documented /api/v1 GET parameter (query and path) and the pages' parameters
    get hostile values; any 5xx is a failure.  No good points: the ledger stays empty."""
    out, ledger = Outcome(), Ledger("webapp")
    base = f"http://127.0.0.1:{stack.ports['webapp']}"
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {stack.api_token}"
    doc = api.get(base + "/api/v1/openapi.json", timeout=30).json()
    targets = [("/api/v1" + path, p["name"], p["in"]) for path, ops in doc["paths"].items()
               for method, op in ops.items() if method == "get"
               for p in op.get("parameters", [])]  # fmt: skip
    targets += [("/anomalies", k, "query") for k in ("since", "until", "page", "metric", "label")]
    targets += [("/metrics", k, "query") for k in ("q", "name", "from", "until")]
    targets += [("/anomaly/{ref}", "ref", "path")]
    sessions = {"api": api, "page": _login(base)}

    def send(drawn: object) -> None:
        (path, name, where), value = drawn  # type: ignore[misc]
        params = {}
        if where == "path":
            path = path.replace("{" + name + "}", requests.utils.quote(value, safe="") or "%20")
        else:
            params[name] = value
        path = re.sub(r"\{[a-z_]+\}", "1", path)  # other path parameters: a plain id
        session = sessions["api" if path.startswith("/api/") else "page"]
        try:
            r = session.get(base + path, params=params, timeout=60, allow_redirects=False)
        except requests.RequestException as exc:
            out.responses[type(exc).__name__] += 1
            return
        out.responses[str(r.status_code)] += 1
        if r.status_code >= 500:
            out.http_5xx += 1

    out.inputs = drive(
        st.tuples(st.sampled_from(targets), hostile.param_values), n, seed_, send, ledger
    )
    return out, ledger


PROTOCOLS: dict[str, Callable[[Stack, int, int], tuple[Outcome, Ledger]]] = {
    "line": fuzz_line,
    "pickle": fuzz_pickle,
    "udp": fuzz_udp,
    "flux_json": fuzz_flux_json,
    "remote_write": fuzz_remote_write,
    "influx": fuzz_influx,
    "statsd": fuzz_statsd,
    "webapp": fuzz_webapp,
}
