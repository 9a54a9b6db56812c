"""``skyline demo``: realistic synthetic metrics through horizon, with injected anomalies.

A dozen metrics — daily seasonality with noise, counters, a few flat ones — are
first backfilled (the last ``--backfill-hours`` at the live interval, straight
into the store, so the analyzer has enough history at once), then streamed live to
horizon's Graphite line port every ``--interval`` seconds.  Anomalies are injected:
a spike about ``--first-anomaly`` seconds after the start (it reaches the Now
page within two minutes), then every ``--every`` seconds a spike, a level shift
or a drop on a random seasonal metric.

The horizon port is the effective one (``var/run/ports.env`` written by ``skyline
start all --pick-free-ports`` is honoured).  ``--background`` detaches (pid file
``var/run/demo.pid``, log ``var/log/demo.log``); the demo ends by itself once
horizon has been unreachable for a minute (after ``skyline stop all``).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from skyline.cli import demo_sql
from skyline.settings import Settings

GIVE_UP = 60.0  # seconds without horizon before the demo ends
PREFIX = "demo."


@dataclass
class DemoMetric:
    name: str
    kind: str  # seasonal | counter | flat | gauge
    base: float
    amplitude: float = 0.0
    noise: float = 0.0
    phase: float = 0.0
    total: float = 0.0  # counters: running total

    def normal(self, ts: float, rng: random.Random, step: float) -> float:
        day = 2 * math.pi * (ts % 86400) / 86400
        if self.kind == "flat":
            return self.base
        if self.kind == "counter":
            rate = self.base * (1 + 0.5 * math.sin(day + self.phase)) + rng.gauss(0, self.noise)
            self.total += max(0.0, rate) * step
            return round(self.total)
        level = self.base + self.amplitude * math.sin(day + self.phase)
        return max(0.0, level + rng.gauss(0, self.noise))

    @property
    def scale(self) -> float:
        """How far from normal an injected anomaly goes."""
        return 10 * (self.amplitude + 3 * self.noise) + 0.5 * self.base


def demo_metrics() -> list[DemoMetric]:
    p = PREFIX
    return [
        DemoMetric(p + "shop.checkout.latency_ms", "seasonal", 120, 25, 3, 0.3),
        DemoMetric(p + "shop.web.requests_per_s", "seasonal", 800, 300, 25, 1.1),
        DemoMetric(p + "shop.web.errors_per_s", "gauge", 2, 0, 0.4),
        DemoMetric(p + "shop.db.connections", "seasonal", 60, 15, 2, 2.0),
        DemoMetric(p + "shop.db.query_time_ms", "seasonal", 8, 2, 0.3, 0.7),
        DemoMetric(p + "shop.queue.depth", "seasonal", 40, 10, 3, 4.0),
        DemoMetric(p + "shop.cache.hit_ratio", "seasonal", 0.92, 0.03, 0.004, 5.0),
        DemoMetric(p + "infra.web1.cpu_user", "seasonal", 35, 20, 2.5, 0.9),
        DemoMetric(p + "infra.web2.cpu_user", "seasonal", 33, 19, 2.5, 1.0),
        DemoMetric(p + "infra.web1.net_bytes_total", "counter", 5e5, 0, 2e4, 0.5),
        DemoMetric(p + "shop.orders_total", "counter", 3, 0, 0.5, 0.2),
        DemoMetric(p + "infra.web1.disk_total_bytes", "flat", 5e11),
        DemoMetric(p + "infra.web1.cores", "flat", 8),
        DemoMetric(p + "shop.feature_flags", "flat", 12),
    ]


@dataclass
class Injection:
    metric: DemoMetric
    kind: str  # spike | level_shift | drop
    start: float
    end: float

    def apply(self, ts: float, value: float) -> float:
        if not self.start <= ts < self.end:
            return value
        if self.kind == "drop":
            return value * 0.02
        return value + self.metric.scale * (1.0 if self.kind == "spike" else 0.6)


class Demo:
    def __init__(self, settings: Settings, *, interval: float = 10.0, backfill_hours: float = 6.0,
                 first_anomaly: float = 20.0, every: float = 180.0, seed: int | None = None,
                 say=print) -> None:  # fmt: skip
        self.settings, self.interval = settings, interval
        self.backfill_hours, self.first_anomaly, self.every = backfill_hours, first_anomaly, every
        self.rng = random.Random(seed)
        self.metrics = demo_metrics()
        self.injections: list[Injection] = []
        self.stop_event = threading.Event()
        self.say = say
        self.sent = 0
        self._sock: socket.socket | None = None

    # History --------------------------------------------------------------------------
    def backfill(self, now: float) -> int:
        """The last ``backfill_hours`` at the live interval (so counters' steps match),
        newer than what is already stored, straight into the store."""
        from skyline.store.connection import connect
        from skyline.store.keys import RedisKeys
        from skyline.store.timeseries import TimeSeriesStore

        store = TimeSeriesStore(connect(self.settings, start_embedded=False),
                                RedisKeys(self.settings.redis.prefix))  # fmt: skip
        step = max(1, round(self.interval))
        start = int(now - self.backfill_hours * 3600) // step * step
        stored = store.read_many([m.name for m in self.metrics])
        grouped: dict[str, tuple[list[float], list[float]]] = {}
        for m in self.metrics:
            series = stored[m.name]
            newest = float(series.timestamps[-1]) if len(series) else 0.0
            if m.kind == "counter" and len(series):
                m.total = float(series.values[-1])
            stamps = [float(t) for t in range(start, int(now) - step + 1, step) if t > newest]
            if stamps:
                grouped[m.name] = (stamps, [m.normal(t, self.rng, step) for t in stamps])
        return store.append_grouped(grouped)

    # Live -----------------------------------------------------------------------------
    def schedule(self, start: float) -> None:
        first = self.metrics[0]  # checkout latency: the first anomaly everyone sees
        t = start + self.first_anomaly
        self.injections.append(Injection(first, "spike", t, t + self.interval))
        t += self.every
        seasonal = [m for m in self.metrics if m.kind == "seasonal"]
        for _ in range(1000):
            metric, kind = (
                self.rng.choice(seasonal),
                self.rng.choice(("spike", "level_shift", "drop")),
            )
            length = {"spike": 1, "level_shift": 60, "drop": 12}[kind] * self.interval
            self.injections.append(Injection(metric, kind, t, t + length))
            t += self.every

    def lines(self, ts: float) -> bytes:
        out = []
        for m in self.metrics:
            value = m.normal(ts, self.rng, self.interval)
            for inj in self.injections:
                if inj.metric is m and inj.start <= ts < inj.end:
                    if ts < inj.start + self.interval:
                        self.say(f"injecting a {inj.kind.replace('_', ' ')} into {m.name}")
                    value = inj.apply(ts, value)
            out.append(f"{m.name} {value!r} {int(ts)}\n")
        return "".join(out).encode()

    def send(self, data: bytes) -> bool:
        cfg = self.settings.horizon
        host = "127.0.0.1" if cfg.bind in ("0.0.0.0", "") else cfg.bind
        for _ in range(2):
            try:
                if self._sock is None:
                    self._sock = socket.create_connection((host, cfg.line_port), timeout=5)
                self._sock.sendall(data)
                return True
            except OSError:
                if self._sock is not None:
                    self._sock.close()
                self._sock = None
        return False

    def run(self, duration: float | None = None) -> int:
        now = time.time()
        n = self.backfill(now)
        self.say(
            f"backfilled {n} datapoints ({self.backfill_hours:g} h of {len(self.metrics)} metrics)"
        )
        demo_sql.run(self.settings, self.stop_event, self.say, self.backfill_hours)  # pulled source
        self.schedule(now)
        self.say(f"streaming to horizon's line port {self.settings.horizon.line_port} every "
                 f"{self.interval:g}s; first anomaly in {self.first_anomaly:g}s")  # fmt: skip
        last_ok, t = time.monotonic(), now
        while not self.stop_event.is_set():
            if duration is not None and time.time() - now >= duration:
                break
            if self.send(self.lines(time.time())):
                self.sent += len(self.metrics)
                last_ok = time.monotonic()
            elif time.monotonic() - last_ok > GIVE_UP:
                self.say(f"horizon unreachable for {GIVE_UP:g}s; the demo ends")
                return 1
            t += self.interval
            self.stop_event.wait(max(0.0, t - time.time()))
        if self._sock is not None:
            self._sock.close()
        return 0


# Running it ------------------------------------------------------------------------------
def effective_settings(config: str | None) -> Settings:
    """Settings with the ports ``skyline start all --pick-free-ports`` moved."""
    from skyline.runtime import control
    from skyline.settings import load_settings

    base = load_settings(config)
    moved = control.port_overrides(base)
    return load_settings(config, env={**moved, **os.environ}) if moved else base


def webapp_url(settings: Settings) -> str:
    return settings.webapp_base_url


def login_hint(settings: Settings) -> str:
    from skyline.webapp.users import admin_password_file

    url = webapp_url(settings)
    path = admin_password_file(settings)
    try:
        password = path.read_text().strip()
    except OSError:
        return f"Web UI: {url}/now (log in with your Skyline user; skyline users add NAME --role admin)"
    return (f"Web UI: {url}/now  user: {settings.webapp.admin_user}  password: {password}\n"
            f"(kept in {path} until you change it: skyline users passwd {settings.webapp.admin_user})")  # fmt: skip


def _running_pid(settings: Settings) -> int | None:
    try:
        pid = int(settings.pid_path("demo").read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if b"skyline.cli.demo" in cmdline else None


def stop_background(settings: Settings) -> bool:
    pid = _running_pid(settings)
    settings.pid_path("demo").unlink(missing_ok=True)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    return True


def start_background(settings: Settings, argv: list[str], config: str | None) -> int:
    pid = _running_pid(settings)
    if pid:
        print(f"demo: already running (pid {pid})")
        return pid
    for sub in ("run", "log"):
        (settings.var_path / sub).mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    if config:
        env["SKYLINE_CONF"] = str(Path(config).resolve())
    with open(settings.var_path / "log" / "demo.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "skyline.cli.demo", *argv], stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)  # fmt: skip
    settings.pid_path("demo").write_text(f"{proc.pid}\n")
    return proc.pid


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--interval", type=float, default=10.0, help="seconds between live datapoints (10)"
    )
    p.add_argument("--backfill-hours", type=float, default=6.0, help="history written first (6)")
    p.add_argument(
        "--first-anomaly", type=float, default=20.0, help="seconds until the first anomaly (20)"
    )
    p.add_argument(
        "--every", type=float, default=180.0, help="seconds between later anomalies (180)"
    )
    p.add_argument(
        "--duration", type=float, help="stop after this many seconds (default: run until stopped)"
    )
    p.add_argument("--seed", type=int, help="random seed, for a reproducible demo")
    p.add_argument("--background", action="store_true", help="detach; log in var/log/demo.log")
    p.add_argument("--stop", action="store_true", help="stop a demo running in the background")


def run(args: argparse.Namespace, config: str | None = None) -> int:
    settings = effective_settings(config)
    if args.stop:
        print("demo: " + ("stopped" if stop_background(settings) else "was not running"))
        return 0
    if args.background:
        argv = [f"--interval={args.interval}", f"--backfill-hours={args.backfill_hours}",
                f"--first-anomaly={args.first_anomaly}", f"--every={args.every}"]  # fmt: skip
        argv += [f"--duration={args.duration}"] if args.duration else []
        argv += [f"--seed={args.seed}"] if args.seed is not None else []
        pid = start_background(settings, argv, config)
        print(
            f"demo: running in the background (pid {pid}; log {settings.var_path / 'log' / 'demo.log'})"
        )
        print(
            f"The first demo anomaly appears on the Now page within two minutes.\n{login_hint(settings)}"
        )
        return 0
    demo = Demo(settings, interval=args.interval, backfill_hours=args.backfill_hours,
                first_anomaly=args.first_anomaly, every=args.every, seed=args.seed,
                say=lambda m: print(f"{time.strftime('%H:%M:%S')} demo: {m}", flush=True))  # fmt: skip
    signal.signal(signal.SIGTERM, lambda *_: demo.stop_event.set())
    print(login_hint(settings), flush=True)
    try:
        return demo.run(args.duration)
    except KeyboardInterrupt:
        return 0
    except (OSError, redis.RedisError) as exc:  # Redis not running: nothing was started
        print(f"skyline demo: {exc}; start Skyline first (skyline start all)", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="skyline demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", metavar="FILE")
    add_arguments(p)
    args = p.parse_args(argv)
    return run(args, args.config)


if __name__ == "__main__":
    sys.exit(main())
