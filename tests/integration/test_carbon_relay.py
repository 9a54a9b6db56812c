"""A real carbon-relay (Debian's ``graphite-carbon``) in front of a real horizon.

Graphite plaintext lines go into carbon-relay's line receiver; carbon-relay forwards
them with its own pickle client to horizon's pickle port; the points must land in
horizon's store with exactly the timestamps and values that were sent.  One test
lets carbon-relay start before horizon listens (it queues and reconnects).

Skipped when carbon-relay is not installed (``apt-get install -y graphite-carbon``).
Frames built by hand the way carbon's pickle client builds them are tested without
carbon in ``test_horizon.py`` (``carbon_frame``); here the bytes that the real
carbon-relay sends are compared with that helper byte for byte.
"""

from __future__ import annotations

import os
import pickle
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port, wait_for
from tests.integration.horizon_fixtures import (
    carbon_frame,
    horizon_env,
    now,
    running_horizon,
    wait_for_points,
)
from tests.peers import require

pytestmark = pytest.mark.timeout(60)

CANDIDATES = ("carbon-relay", "/usr/bin/carbon-relay", "/opt/graphite/bin/carbon-relay")
START_TIMEOUT = 20.0
# carbon's client factory reconnects with a back-off capped at maxDelay = 5 s (plus
# jitter), so a destination that comes up is connected to within about 6 s.
RECONNECT_TIMEOUT = 15.0


def _find_carbon_relay() -> tuple[str | None, str]:
    """The carbon-relay executable and "", or None and why it cannot be used."""
    reason = "carbon-relay is not installed (apt-get install -y graphite-carbon)"
    for candidate in CANDIDATES:
        path = shutil.which(candidate)
        if not path:
            continue
        with open(path, "rb") as f:
            first = f.readline().decode("utf-8", "replace")
        interpreter = first[2:].split() if first.startswith("#!") else []
        if not interpreter:
            return path, ""
        try:
            probe = subprocess.run(
                [*interpreter, "-c", "import carbon.conf, carbon.client, twisted.internet"],
                capture_output=True,
                timeout=30,
                env=_clean_env(),
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            reason = f"{path}: its interpreter {interpreter} cannot run: {exc}"
            continue
        if probe.returncode == 0:
            return path, ""
        last = probe.stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
        reason = f"{path}: {' '.join(interpreter)} cannot import carbon: {''.join(last)}"
    return None, reason


def _clean_env() -> dict[str, str]:
    """The environment without this virtualenv's Python settings (carbon runs under
    the system Python)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PYTHONUNBUFFERED"] = "1"  # its log (stdout) is read while it runs
    env["PYTHONWARNINGS"] = "ignore"
    return env


@pytest.fixture(scope="session")
def carbon_relay_bin() -> str:
    path, reason = _find_carbon_relay()
    if path is None:
        require("carbon-relay", reason)
    return path


class CarbonRelay:
    """carbon-relay in the foreground with every file under ``directory``."""

    def __init__(
        self,
        binary: str,
        directory: Path,
        destinations: list[int],
        method: str = "rules",
        **extra: object,
    ) -> None:
        self.binary = binary
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.line_port = free_port()
        self.pickle_port = free_port()
        self.destinations = [f"127.0.0.1:{port}" for port in destinations]
        self.log_path = self.dir / "carbon-relay.log"
        self.conf = self.dir / "carbon.conf"
        self.proc: subprocess.Popen | None = None
        self._log_file = None
        settings: dict[str, object] = {
            "STORAGE_DIR": self.dir / "storage",
            "LOCAL_DATA_DIR": self.dir / "storage" / "whisper",
            "WHITELISTS_DIR": self.dir / "storage" / "lists",
            "LOG_DIR": self.dir / "log",
            "PID_DIR": self.dir / "run",
            "ENABLE_TAGS": "False",
            "LINE_RECEIVER_INTERFACE": "127.0.0.1",
            "LINE_RECEIVER_PORT": self.line_port,
            "PICKLE_RECEIVER_INTERFACE": "127.0.0.1",
            "PICKLE_RECEIVER_PORT": self.pickle_port,
            "ENABLE_UDP_LISTENER": "False",
            "ENABLE_MANHOLE": "False",
            "ENABLE_AMQP": "False",
            "RELAY_METHOD": method,
            "DESTINATIONS": ", ".join(self.destinations),
            "MAX_QUEUE_SIZE": 5000,
            "USE_FLOW_CONTROL": "False",
            "MAX_DATAPOINTS_PER_MESSAGE": 500,
            **extra,
        }
        body = "".join(f"{k} = {v}\n" for k, v in settings.items())
        self.conf.write_text("[relay]\n" + body)
        rules = "[default]\ndefault = true\ndestinations = " + ", ".join(self.destinations) + "\n"
        (self.dir / "relay-rules.conf").write_text(rules)
        # carbon refuses to start without this file next to carbon.conf, even as a relay
        (self.dir / "storage-schemas.conf").write_text("")

    def start(self) -> None:
        args = [self.binary, f"--config={self.conf}", f"--pidfile={self.dir / 'relay.pid'}",
                "--nodaemon", "start"]  # fmt: skip
        self._log_file = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            args,
            cwd=self.dir,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env={**_clean_env(), "GRAPHITE_ROOT": str(self.dir)},
            start_new_session=True,
        )
        wait_for(self._accepting, timeout=START_TIMEOUT)

    def _accepting(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"carbon-relay exited {self.proc.returncode}:\n{self.log()}")
        try:
            socket.create_connection(("127.0.0.1", self.line_port), timeout=1).close()
        except OSError:
            return False
        return True

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                # it waits for its queues to drain into destinations that may be gone
                self.proc.kill()
                self.proc.wait(10)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_log(self, text: str, timeout: float = RECONNECT_TIMEOUT) -> None:
        try:
            wait_for(lambda: text in self.log(), timeout=timeout)
        except AssertionError:
            raise AssertionError(f"{text!r} not in carbon-relay's log:\n{self.log()}") from None

    def send_lines(self, lines: list[str]) -> None:
        with socket.create_connection(("127.0.0.1", self.line_port), timeout=10) as s:
            s.sendall("".join(line + "\n" for line in lines).encode())

    def send_pickle(self, points: list[tuple[str, tuple[float, float]]]) -> None:
        with socket.create_connection(("127.0.0.1", self.pickle_port), timeout=10) as s:
            s.sendall(carbon_frame(points))


@pytest.fixture
def carbon_relay(carbon_relay_bin: str, tmp_path: Path) -> Iterator:
    """A factory of started carbon-relays; every one is terminated at teardown."""
    relays: list[CarbonRelay] = []

    def start(destinations: list[int], method: str = "rules", **extra: object) -> CarbonRelay:
        relay = CarbonRelay(
            carbon_relay_bin, tmp_path / f"carbon{len(relays)}", destinations, method, **extra
        )
        relays.append(relay)
        relay.start()
        return relay

    try:
        yield start
    finally:
        for relay in relays:
            relay.stop()


class PickleSink:
    """Stands in for a carbon-cache: accepts connections and keeps the raw bytes."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.received = bytearray()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        conn.settimeout(0.2)
        with conn:
            while not self._stop.is_set():
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not data:
                    return
                with self._lock:
                    self.received += data

    def frames(self) -> list[bytes]:
        """Complete length-prefixed frames received so far, header included."""
        with self._lock:
            buf = bytes(self.received)
        out = []
        while len(buf) >= 4:
            (length,) = struct.unpack("!L", buf[:4])
            if len(buf) < 4 + length:
                break
            out.append(buf[: 4 + length])
            buf = buf[4 + length :]
        return out

    def points(self) -> list[tuple[str, tuple[float, float]]]:
        return [p for frame in self.frames() for p in pickle.loads(frame[4:])]

    def close(self) -> None:
        self._stop.set()
        self.server.close()
        self._thread.join(5)


@pytest.fixture
def sink() -> Iterator[PickleSink]:
    s = PickleSink()
    try:
        yield s
    finally:
        s.close()


def expected_series(lines: list[str]) -> dict[str, list[tuple[int, float]]]:
    """What horizon must hold for Graphite lines: name -> sorted (timestamp, value)."""
    out: dict[str, list[tuple[int, float]]] = {}
    for line in lines:
        name, value, ts = line.split()
        out.setdefault(name, []).append((int(float(ts)), float(value)))
    return {name: sorted(points) for name, points in out.items()}


def stored(horizon, name: str) -> list[tuple[int, float]]:
    series = horizon.store.read(name)
    return list(zip(series.timestamps.tolist(), series.values.tolist(), strict=True))


def assert_landed(horizon, expected: dict[str, list[tuple[int, float]]]) -> None:
    for name, points in expected.items():
        wait_for_points(horizon, name, len(points), timeout=RECONNECT_TIMEOUT)
        assert stored(horizon, name) == points, name


def graphite_lines(t: int, prefix: str = "relay") -> list[str]:
    """Several metrics, five points each a minute apart: integers, floats, negatives,
    exponents, a float timestamp."""
    values = {
        f"{prefix}.web01.requests": ["0", "17", "42", "1000000", "3"],
        f"{prefix}.web01.latency_ms": ["0.25", "12.5", "3.14159265358979", "1e-3", "99.999"],
        f"{prefix}.dc1.outside_temp_c": ["-3.5", "-0.125", "0.0", "-12", "2.75"],
        f"{prefix}.queue.delta": ["-1.5e6", "2.5E+3", "-7", "123456789.125", "-0.000001"],
    }
    lines = []
    for name, vals in values.items():
        for i, value in enumerate(vals):
            ts = t - 240 + 60 * i
            lines.append(f"{name} {value} {ts}")
    lines.append(f"{prefix}.float.timestamp 5.5 {t - 30}.75")  # stored at whole seconds
    return lines


def test_lines_through_carbon_relay_land_exactly_and_are_copied_to_carbon_cache(
    make_settings, carbon_relay, sink
):
    with running_horizon(make_settings(**horizon_env())) as horizon:
        horizon_port = horizon.listeners.ports["pickle_port"]
        # the usual production setup: one relay feeding carbon-cache AND horizon
        relay = carbon_relay([sink.port, horizon_port], method="rules")
        relay.wait_for_log(f"Destination is up: 127.0.0.1:{horizon_port}:None")

        t = now()
        lines = graphite_lines(t)
        relay.send_lines(lines)
        expected = expected_series(lines)
        assert_landed(horizon, expected)
        assert set(horizon.store.metrics()) == set(expected)

        log = relay.log()
        assert f"CarbonClientFactory(127.0.0.1:{horizon_port}:None)::connectionMade" in log
        assert "invalid line" not in log

        # the carbon-cache side got the same points ...
        wait_for(lambda: len(sink.points()) == len(lines), timeout=RECONNECT_TIMEOUT)
        got = {}
        for name, (ts, value) in sink.points():
            got.setdefault(name, []).append((int(ts), value))
        assert {k: sorted(v) for k, v in got.items()} == expected
        # ... as pickle protocol 2 frames that are byte for byte what carbon_frame()
        # builds (the helper the carbon-free tests in test_horizon.py use)
        for frame in sink.frames():
            assert frame[4:6] == b"\x80\x02", "pickle protocol 2"
            assert carbon_frame(pickle.loads(frame[4:])) == frame
            decoded = pickle.loads(frame[4:])
            assert all(type(ts) is float and type(v) is float for _, (ts, v) in decoded)


def test_consistent_hashing_relay_pickle_input_and_carbons_own_metrics(make_settings, carbon_relay):
    with running_horizon(make_settings(**horizon_env())) as horizon:
        horizon_port = horizon.listeners.ports["pickle_port"]
        relay = carbon_relay([horizon_port], method="consistent-hashing", CARBON_METRIC_INTERVAL=1)
        t = now()
        lines = graphite_lines(t, prefix="ch")
        relay.send_lines(lines)
        # carbon-relay's own pickle receiver feeds the same pipeline
        relay.send_pickle([("ch.from.pickle", (float(t - 60), -2.5)), ("ch.from.pickle", (t, 4))])
        before = time.time()
        # carbon drops NaN itself, skips invalid lines, and stamps -1 with its clock;
        # horizon rejects what is outside its window and counts it
        relay.send_lines(
            [f"ch.nan nan {t}", "ch.not a line", "ch.now 1.5 -1", f"ch.too.old 1 {t - 7200}"]
        )
        expected = expected_series(lines)
        expected["ch.from.pickle"] = [(t - 60, -2.5), (t, 4.0)]
        assert_landed(horizon, expected)
        (ts_now, v_now) = wait_for_points(horizon, "ch.now", 1).pairs()[0]
        assert v_now == 1.5 and int(before) <= ts_now <= time.time()
        wait_for(lambda: horizon.counters.peek().get("rejected.timestamp_too_old") == 1)
        assert "ch.nan" not in horizon.store.metrics()
        assert "ch.too.old" not in horizon.store.metrics()

        # carbon-relay's self-metrics (carbon.relays.<host>-a.*) come through too
        def carbon_metrics():
            return [m for m in horizon.store.metrics() if m.startswith("carbon.relays.")]

        names = wait_for(carbon_metrics, timeout=RECONNECT_TIMEOUT)
        assert any(m.endswith(".metricsReceived") for m in names), names
        relay.wait_for_log("invalid line received")
        relay.wait_for_log(f"CarbonClientFactory(127.0.0.1:{horizon_port}:None)::connectionMade")


def test_relay_queues_until_horizon_listens_then_delivers(make_settings, carbon_relay):
    env = horizon_env()
    horizon_port = int(env["SKYLINE__HORIZON__PICKLE_PORT"])
    relay = carbon_relay([horizon_port])
    relay.wait_for_log(f"clientConnectionFailed (127.0.0.1:{horizon_port})")
    t = now()
    lines = graphite_lines(t, prefix="late")
    relay.send_lines(lines)  # queued in carbon-relay: nothing listens yet
    with running_horizon(make_settings(**env)) as horizon:
        relay.wait_for_log(f"Destination is up: 127.0.0.1:{horizon_port}:None")
        assert_landed(horizon, expected_series(lines))
        assert set(horizon.store.metrics()) == set(expected_series(lines))
