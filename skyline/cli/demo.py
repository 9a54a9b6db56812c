"""``skyline demo``: realistic synthetic metrics through horizon, with injected anomalies
that walk the whole pipeline.

A dozen metrics — daily seasonality with noise, counters, a few flat ones — are
first backfilled (``--history-hours`` into mirage's rollups, then the last
``--backfill-hours`` at the live interval straight into the store, so analyzer and
mirage have enough history at once), then streamed live to horizon's Graphite line
port every ``--interval`` seconds.

The story (the embedded defaults' ``[[alerts]]`` rule sends ``demo.*`` through mirage,
which judges a day in minutes, to the file channel) takes about two minutes: the
backfill holds a timeout in checkout latency and, with it, the database's query time
(injections move a metric and its partner together, so luminosity relates them),
``--repeat-after`` seconds before ``--repeat-at``.  The analyzer judges a new metric's
stored points, so it finds the timeout at once; mirage confirms it and the alert is
delivered.  Once it has its final verdict the demo trains it as normal (a features
profile, as the anomaly page's button does; ``--no-train`` leaves that to you), and
``--repeat-at`` seconds after the start the same timeout comes again, live: ionosphere
silences it.  (On a store that already holds the story's metrics the first comes live
at ``--first-anomaly``, the repeat ``--repeat-after`` later.)  Meanwhile, from
``--first-anomaly`` on and every ``--every`` seconds, a spike, a timeout, a level shift
or a drop on a random seasonal metric (other than the story's until the repeat has
passed; mirage clears what its day of minutes does not show, and confirms the rest).

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
from collections.abc import Callable
from pathlib import Path

import numpy as np
import redis
from sqlalchemy import Engine, select

from skyline.cli import demo_sql
from skyline.cli.demo_data import (
    BACKFILL_HOURS,
    DEFAULT_INTERVAL,
    DILUTED_AFTER,
    REPEAT_AT,
    REPEAT_POINTS,
    DemoMetric,
    Injection,
    default_repeat_after,
    demo_metrics,
    early_before,
    early_in_bucket,
    partner_of,
)
from skyline.runtime.signal_flag import SignalFlag
from skyline.settings import Settings
from skyline.store.timeseries import Series, TimeSeriesStore

GIVE_UP = 60.0  # seconds without horizon before the demo ends
HISTORY_STEP = 60  # s between the points of the history written into the rollups


def newest(series: Series) -> float:
    """The newest timestamp of ``series`` (0: empty)."""
    return float(series.timestamps[-1]) if len(series) else 0.0


class Demo:
    def __init__(self, settings: Settings, *, interval: float = DEFAULT_INTERVAL,
                 backfill_hours: float = BACKFILL_HOURS, first_anomaly: float = 20.0,
                 every: float = 180.0, seed: int | None = None, history_hours: float = 48.0,
                 repeat_after: float | None = None, repeat_at: float = REPEAT_AT,
                 train: bool = True, say=print) -> None:  # fmt: skip
        self.settings, self.interval, self.repeat_at = settings, interval, repeat_at
        self.backfill_hours, self.first_anomaly, self.every = backfill_hours, first_anomaly, every
        if repeat_after is None:
            repeat_after = default_repeat_after(interval)
        self.history_hours, self.repeat_after, self.train = history_hours, repeat_after, train
        self.story: list[Injection] = []
        self.profile_id: int | None = None
        self.rng = random.Random(seed)
        self.metrics = demo_metrics()
        self.injections: list[Injection] = []
        self.stop_event = SignalFlag()  # set by the SIGTERM handler (signal_flag.py)
        self.say = say
        self.sent = 0
        self._sock: socket.socket | None = None

    # History --------------------------------------------------------------------------
    def _store(self) -> TimeSeriesStore:
        from skyline.store.connection import connect
        from skyline.store.keys import RedisKeys

        return TimeSeriesStore(connect(self.settings, start_embedded=False),
                               RedisKeys(self.settings.redis.prefix))  # fmt: skip

    def backfill(self, now: float, store: TimeSeriesStore, stored: dict[str, Series]) -> int:
        """The last ``backfill_hours`` at the live interval (so counters' steps match),
        newer than what is already ``stored``, straight into the store, with the
        injections scheduled in that time (the story's first timeout)."""
        step = max(1, round(self.interval))
        start = int(now - self.backfill_hours * 3600) // step * step
        past = [i for i in self.injections if i.start < now]
        for inj in past:
            when = time.strftime("%H:%M:%S", time.localtime(inj.start))
            self.say(f"injected {inj.describe()} at {when}, in the backfill")
        grouped: dict[str, tuple[list[float], list[float]]] = {}
        for m in self.metrics:
            series = stored[m.name]
            last = newest(series)
            if m.kind == "counter" and len(series):
                m.total = float(series.values[-1])
            if not len(series):
                self.history(store, m, start, now)
            stamps = [float(t) for t in range(start, int(now) - step + 1, step) if t > last]
            if stamps:
                grouped[m.name] = (stamps, [self.value(m, t, step, past) for t in stamps])
        return store.append_grouped(grouped)

    def history(self, store: TimeSeriesStore, m: DemoMetric, end: int, now: float) -> int:
        """``history_hours`` before ``end`` into the rollups mirage reads (the route pulled
        history takes), so mirage has the whole window of the demo's rule at once."""
        from skyline.ingest.vista.route import roll_in

        step = HISTORY_STEP
        stamps = np.arange(int(end - self.history_hours * 3600) // step * step, end, step)
        if not len(stamps):
            return 0
        values = np.array([m.normal(float(t), self.rng, step) for t in stamps])
        return roll_in(store, self.settings, m.name, stamps.astype(np.float64), values, now)

    # The story --------------------------------------------------------------------------
    def train_story(self, timeout: float) -> int | None:
        """Wait until the story's first anomaly has its final verdict (so it was alerted
        before any profile existed), then train it as normal, as an operator would with
        the anomaly page's button; returns the profile id (None: not trained, said why)."""
        from skyline.webapp.context import make_context
        from skyline.webapp.training import ProfileError, train_anomaly

        first = self.story[0]
        c = make_context(self.settings)
        deadline = time.monotonic() + timeout
        found = None
        while found is None and not self.stop_event.wait(1.0):
            found = settled_anomaly(c.engine, first.metric.name, first.start, first.end)
            if found is None and time.monotonic() > deadline:
                self.say(f"the timeout in {first.metric.name} was not stored and judged within "
                         f"{timeout:g}s (is panorama running?); nothing trained")  # fmt: skip
                return None
        if found is None:
            return None
        anomaly_id, verdict = found
        try:
            pid = train_anomaly(c, anomaly_id, None, label="demo: the checkout timeout")
        except ProfileError as exc:
            self.say(f"could not train anomaly {anomaly_id} as normal: {exc}")
            return None
        self.profile_id = pid
        again = time.strftime("%H:%M:%S", time.localtime(self.story[1].start)) if len(
            self.story) > 1 else "later"  # fmt: skip
        self.say(f"anomaly {anomaly_id} of {first.metric.name} ({verdict}) trained as normal: "
                 f"features profile {pid}; the same timeout at {again} will be silenced")  # fmt: skip
        return pid

    # Live -----------------------------------------------------------------------------
    def schedule(self, start: float, newest: dict[str, float] | None = None) -> None:
        """The story first: a timeout (a very high spike) into checkout latency and its
        partner, which ``train_story`` trains as normal, and the same timeout again
        ``repeat_after`` seconds later, which ionosphere silences; both early in one of
        mirage's buckets (``early_in_bucket``) when a bucket holds more than
        ``DILUTED_AFTER`` points, else anywhere.  The repeat comes live ``repeat_at``
        seconds after the start, and the first in the backfill, where the analyzer
        judges it when it first sees the metric.  When the backfill cannot hold it
        (``newest``: the story's metrics are stored past it; a short backfill), the
        first comes live at ``first_anomaly`` and the repeat ``repeat_after`` later.
        And every ``every`` seconds a random anomaly, from ``first_anomaly`` on (from
        the story's first on, when that is live then)."""
        first = self.metrics[0]  # checkout latency: the story's metric
        partner = partner_of(first, self.metrics)
        res = self.story_resolution(first)
        diluted = res > DILUTED_AFTER * self.interval  # else anywhere in a bucket will do
        after = (lambda t: early_in_bucket(t, res)) if diluted else (lambda t: t)
        upto = (lambda t: early_before(t, res)) if diluted else (lambda t: t)
        times = [after(start + self.first_anomaly)]
        if self.repeat_after:
            again = after(start + self.repeat_at)
            before = upto(again - self.repeat_after)
            stored = max((newest or {}).get(m.name, 0.0) for m in self._moved(first))
            earliest = start - self.backfill_hours * 3600 + REPEAT_POINTS * self.interval
            if stored < earliest <= before < start:
                times = [before, again]
            else:
                times.append(after(times[0] + self.repeat_after))
        self.story = [Injection(first, "timeout", t, t + self.interval, partner) for t in times]
        self.injections.extend(self.story)
        # random anomalies; until the repeat has passed none touches the story's metrics
        # (a taller peak would hide the repeat from the detector, and panorama would not
        # store the repeat of a repeat)
        story_end = self.story[-1].end
        touched = {m.name for m in self.story[0].metrics}
        seasonal = [m for m in self.metrics if m.kind == "seasonal"]
        aside = [m for m in seasonal if not touched & {x.name for x in self._moved(m)}]
        live_first = self.story[0].start == start + self.first_anomaly
        t = self.story[0].start + self.every if live_first else start + self.first_anomaly
        for _ in range(1000):
            metric, kind = (
                self.rng.choice(seasonal if t > story_end + self.every else aside),
                self.rng.choice(("spike", "timeout", "level_shift", "drop")),
            )
            length = {"spike": self.interval, "timeout": self.interval, "level_shift": 600.0,
                      "drop": 120.0}[kind]  # fmt: skip
            self.injections.append(
                Injection(metric, kind, t, t + length, partner_of(metric, self.metrics))
            )
            t += self.every

    def story_resolution(self, m: DemoMetric) -> int:
        """The bucket width mirage judges ``m`` in (its [[alerts]] rule's)."""
        from skyline.events.rules import route

        rule = route(self.settings.alerts, m.name)
        return rule.mirage_resolution or self.settings.mirage.rollup_resolution

    def _moved(self, m: DemoMetric) -> tuple[DemoMetric, ...]:
        """The metrics an injection into ``m`` moves: it and its partner."""
        partner = partner_of(m, self.metrics)
        return (m, partner) if partner else (m,)

    def value(self, m: DemoMetric, ts: float, step: float,
              injections: list[Injection] | None = None) -> float:  # fmt: skip
        """``m``'s point at ``ts``: normal, moved by the injections under way (of
        ``injections``, default all)."""
        value = m.normal(ts, self.rng, step)
        for inj in self.injections if injections is None else injections:
            if any(m is x for x in inj.metrics) and inj.start <= ts < inj.end:
                value = inj.apply(ts, value, m)
        return value

    def lines(self, ts: float) -> bytes:
        for inj in self.injections:
            if inj.start <= ts < inj.start + self.interval:
                self.say(f"injecting {inj.describe()}")
        out = [f"{m.name} {self.value(m, ts, self.interval)!r} {int(ts)}\n" for m in self.metrics]
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
        store = self._store()
        stored = store.read_many([m.name for m in self.metrics])  # once: the story and backfill
        self.schedule(now, {name: newest(series) for name, series in stored.items()})
        n = self.backfill(now, store, stored)
        self.say(
            f"backfilled {n} datapoints ({self.backfill_hours:g} h of {len(self.metrics)} metrics)"
        )
        demo_sql.run(self.settings, self.stop_event, self.say, self.backfill_hours)  # pulled source
        at = [time.strftime("%H:%M:%S", time.localtime(i.start)) for i in self.story]
        where = " (in the backfill)" if self.story[0].start < now else ""
        self.say(f"streaming to horizon's line port {self.settings.horizon.line_port} every "
                 f"{self.interval:g}s; first anomaly in {self.first_anomaly:g}s; the story's "
                 f"timeout at {at[0]}{where}" + "".join(f" and again at {t}" for t in at[1:]))  # fmt: skip
        if self.train and len(self.story) > 1:
            wait = self.story[1].start - now - 2 * self.interval
            threading.Thread(target=self.train_story, args=(wait,), daemon=True).start()
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


FINAL = ("alerted", "suppressed", "not_anomalous", "cleared", "no_alert_rule", "failed")


def settled_anomaly(
    engine: Engine, metric: str, start: float, end: float
) -> tuple[int, str] | None:
    """The anomaly of ``metric`` detected in ``[start, end]`` once its verdict is final."""
    from skyline.db.models import Anomaly, Metric

    q = (select(Anomaly.id, Anomaly.verdict).join(Metric, Anomaly.metric_id == Metric.id)
         .where(Metric.name == metric, Anomaly.timestamp >= int(start),
                Anomaly.timestamp <= int(end)).order_by(Anomaly.id))  # fmt: skip
    with engine.connect() as conn:
        row = conn.execute(q).first()
    return (int(row[0]), str(row[1])) if row is not None and row[1] in FINAL else None


# Running it ------------------------------------------------------------------------------
def effective_settings(config: str | None) -> Settings:
    """Settings with the ports ``skyline start all --pick-free-ports`` moved."""
    from skyline.runtime import control
    from skyline.settings import load_settings

    base = load_settings(config)
    moved = control.port_overrides(base)
    return load_settings(config, env={**moved, **os.environ}) if moved else base


STORY = """\
The demo's story (README, "The demo"), about two minutes on a new store:
  1. within seconds a timeout in demo.shop.checkout.latency_ms (and demo.shop.db.query_time_ms)
     {repeat} ago, in the backfilled history, is on the Now page: the analyzer judges a new
     metric's stored points, mirage re-checks it over a day, luminosity relates the two
     metrics, and the alert is delivered to {alerts} (the anomaly page's Alerts table);
  2. once its verdict is final the demo trains it as normal (a features profile), as the
     page's button does;
  3. the same timeout again, live {repeat_at} after the start, is silenced by ionosphere: its
     verdict trail says which profile matched;
  4. meanwhile a random anomaly elsewhere from {first} s on, every few minutes.
  On a store that already holds the demo's metrics the first timeout comes live at {first} s
  and its repeat {repeat} later."""


def _seconds_text(seconds: float) -> str:
    return f"{seconds / 60:.0f} minutes" if seconds >= 120 else f"{seconds:.0f} s"


def story_text(settings: Settings, args: argparse.Namespace) -> str:
    repeat = args.repeat_after
    if repeat is None:
        repeat = default_repeat_after(args.interval)
    return STORY.format(alerts=alert_file(settings), repeat=_seconds_text(repeat),
                        repeat_at=_seconds_text(args.repeat_at), first=f"{args.first_anomaly:g}")  # fmt: skip


def alert_file(settings: Settings) -> str:
    """Where the file channel of the demo's rule appends its alerts."""
    return str(Path(settings.alerters.file.path).expanduser().absolute())


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


def bounded(low: float, high: float, zero_ok: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number in ``(low, high]`` (``[low, high]`` with
    ``zero_ok`` and ``low`` 0): ``--backfill-hours 1e9`` ran for ever and ``--interval
    nan`` raised."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not (
            math.isfinite(value) and (low < value or zero_ok and value == low) and value <= high
        ):
            raise argparse.ArgumentTypeError(f"{text} is not in {'[' if zero_ok else '('}"
                                             f"{low:g}, {high:g}]")  # fmt: skip
        return value

    return parse


DAY_HOURS = 24.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--interval",
        type=bounded(0, 3600),
        default=DEFAULT_INTERVAL,
        help="seconds between live datapoints (10)",
    )
    p.add_argument("--backfill-hours", type=bounded(0, 30 * DAY_HOURS, zero_ok=True), default=BACKFILL_HOURS,
                   help=f"history written first at the interval ({BACKFILL_HOURS:g})")  # fmt: skip
    p.add_argument(
        "--first-anomaly", type=float, default=20.0, help="seconds until the first anomaly (20)"
    )
    p.add_argument(
        "--every", type=float, default=180.0, help="seconds between later anomalies (180)"
    )
    p.add_argument(
        "--duration",
        type=bounded(0, 365 * 86400),
        help="stop after this many seconds (default: run until stopped)",
    )
    p.add_argument("--history-hours", type=bounded(0, 30 * DAY_HOURS, zero_ok=True), default=48.0,
                   help="older history written into mirage's rollups (48)")  # fmt: skip
    p.add_argument("--repeat-after", type=float,
                   help="seconds from the story's timeout to its identical repeat, which the "
                   "trained profile silences (default: 480 intervals, 80 min at 10 s; "
                   "the first is in the backfill)")  # fmt: skip
    p.add_argument("--repeat-at", type=float, default=REPEAT_AT,
                   help=f"seconds from the start to the repeat ({REPEAT_AT:g})")  # fmt: skip
    p.add_argument("--no-train", dest="train", action="store_false",
                   help="do not train the first anomaly as normal (train it yourself)")  # fmt: skip
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
        argv += [f"--history-hours={args.history_hours}"]
        argv += [f"--repeat-after={args.repeat_after}"] if args.repeat_after is not None else []
        argv += [f"--repeat-at={args.repeat_at}"]
        argv += [] if args.train else ["--no-train"]
        argv += [f"--duration={args.duration}"] if args.duration else []
        argv += [f"--seed={args.seed}"] if args.seed is not None else []
        pid = start_background(settings, argv, config)
        print(
            f"demo: running in the background (pid {pid}; log {settings.var_path / 'log' / 'demo.log'})"
        )
        print(story_text(settings, args))
        print(login_hint(settings))
        return 0
    demo = Demo(settings, interval=args.interval, backfill_hours=args.backfill_hours,
                first_anomaly=args.first_anomaly, every=args.every, seed=args.seed,
                history_hours=args.history_hours, repeat_after=args.repeat_after,
                repeat_at=args.repeat_at, train=args.train,
                say=lambda m: print(f"{time.strftime('%H:%M:%S')} demo: {m}", flush=True))  # fmt: skip
    signal.signal(signal.SIGTERM, lambda *_: demo.stop_event.set())
    print(story_text(settings, args))
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
