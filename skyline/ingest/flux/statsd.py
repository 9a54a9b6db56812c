"""StatsD over UDP: parse, aggregate per flush interval, flush Graphite-style names.

Accepted lines (several per datagram, separated by newlines; several values per
name separated by ``:``)::

    name:value|c[|@rate]     counter (value / rate is added)
    name:value|g             gauge;  name:+value|g / name:-value|g change it
    name:value|ms[|@rate]    timer   (|h histogram is the same)
    name:value|s             set     (distinct values are counted)

DogStatsD tags (``|#a:b``) are accepted and ignored.  Names are sanitised as
etsy statsd does: whitespace -> ``_``, ``/`` -> ``-``, other characters outside
``A-Za-z0-9_.-`` removed.  Every flush (``[flux] statsd_flush_interval``)
writes, for the flush timestamp (etsy statsd's legacy namespace)::

    stats.<name>                 counter per second      stats_counts.<name>  count
    stats.gauges.<name>          gauge (re-sent each flush until statsd_gauge_idle)
    stats.sets.<name>.count      distinct values
    stats.timers.<name>.{count,count_ps,lower,upper,mean,median,sum,std}
    stats.timers.<name>.{count,mean,upper,sum}_<pct>   for each statsd_percentiles
"""

from __future__ import annotations

import logging
import math
import re
import socket
import threading
import time
from dataclasses import dataclass, field

from skyline.runtime.daemon import Counters
from skyline.runtime.threads import ThreadPolicy
from skyline.store.datapoint import MAX_NAME_LENGTH, printable

log = logging.getLogger("skyline.flux")
_SPACES = re.compile(r"\s+")
_DROP = re.compile(r"[^A-Za-z0-9_.\-]")
TIMER_SAMPLES_LIMIT = 10_000  # values kept per timer per interval (count stays exact)
TYPES = {"c", "g", "ms", "h", "s"}


def clean_name(raw: str) -> str:
    return _DROP.sub("", _SPACES.sub("_", raw).replace("/", "-"))


@dataclass
class Sample:
    name: str
    value: float | str
    kind: str
    rate: float = 1.0
    delta: bool = False


def parse_packet(data: bytes) -> tuple[list[Sample], list[tuple[str, bytes]]]:
    """Samples and (reason, line) for each bad line; never raises."""
    samples: list[Sample] = []
    bad: list[tuple[str, bytes]] = []
    for raw in data.split(b"\n"):
        raw = raw.strip()
        if not raw:
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            bad.append(("not_utf8", raw))
            continue
        line = line.split("|#", 1)[0]  # DogStatsD tags (may hold ':') are ignored
        name, _, rest = line.partition(":")
        name = clean_name(name)
        if not name or not rest:
            bad.append(("no_name" if not name else "no_value", raw))
            continue
        if len(name) > MAX_NAME_LENGTH:  # no flush could store it: it takes no slot
            bad.append(("name_too_long", raw))
            continue
        for bit in rest.split(":"):
            sample = _parse_bit(name, bit)
            if isinstance(sample, str):
                bad.append((sample, raw))
            else:
                samples.append(sample)
    return samples, bad


def _parse_bit(name: str, bit: str) -> Sample | str:
    fields = bit.split("|")
    if len(fields) < 2:
        return "no_type"
    raw_value, kind = fields[0].strip(), fields[1].strip()
    if kind not in TYPES:
        return "unknown_type"
    rate = 1.0
    for extra in fields[2:]:
        if extra.startswith("@"):
            try:
                rate = float(extra[1:])
            except ValueError:
                return "bad_sample_rate"
            if not 0 < rate <= 1:
                return "bad_sample_rate"
    if kind == "s":
        return Sample(name, raw_value[:256], kind)
    try:
        value = float(raw_value)
    except ValueError:
        return "value_not_numeric"
    if not math.isfinite(value):
        return "value_not_finite"
    return Sample(name, value, kind, rate, kind == "g" and raw_value[:1] in "+-")


@dataclass
class _Timer:
    count: float = 0.0
    values: list[float] = field(default_factory=list)


class Aggregator:
    """Thread-safe aggregation of one flush interval (listener adds, flusher takes)."""

    def __init__(
        self, counters: Counters, percentiles: list[float], max_metrics: int, gauge_idle: float
    ) -> None:
        self.stats = counters
        self.percentiles, self.max_metrics, self.gauge_idle = percentiles, max_metrics, gauge_idle
        self.lock = threading.Lock()
        self.counters: dict[str, float] = {}
        self.timers: dict[str, _Timer] = {}
        self.sets: dict[str, set[str]] = {}
        self.gauges: dict[str, tuple[float, float]] = {}  # name -> (value, last update)

    def _room(self, table: dict, name: str) -> bool:
        if name in table:
            return True
        total = len(self.counters) + len(self.timers) + len(self.sets) + len(self.gauges)
        if total >= self.max_metrics:
            self.stats.inc("statsd.dropped.too_many_metrics")
            return False
        return True

    def add(self, samples: list[Sample], now: float | None = None) -> None:
        now = now if now is not None else time.time()
        with self.lock:
            for s in samples:
                if s.kind == "c":
                    if self._room(self.counters, s.name):
                        self.counters[s.name] = self.counters.get(s.name, 0.0) + s.value / s.rate  # type: ignore[operator]
                elif s.kind == "g":
                    if self._room(self.gauges, s.name):
                        old = self.gauges.get(s.name, (0.0, 0.0))[0]
                        value = old + s.value if s.delta else s.value  # type: ignore[operator]
                        self.gauges[s.name] = (value, now)  # type: ignore[assignment]
                elif s.kind in ("ms", "h"):
                    if self._room(self.timers, s.name):
                        timer = self.timers.setdefault(s.name, _Timer())
                        timer.count += 1 / s.rate
                        if len(timer.values) < TIMER_SAMPLES_LIMIT:
                            timer.values.append(s.value)  # type: ignore[arg-type]
                elif self._room(self.sets, s.name):
                    self.sets.setdefault(s.name, set()).add(s.value)  # type: ignore[arg-type]

    def flush(self, now: float, interval: float) -> list[tuple[str, float, float]]:
        """Take this interval's aggregates as (name, timestamp, value) datapoints."""
        with self.lock:
            counters, timers, sets = self.counters, self.timers, self.sets
            self.counters, self.timers, self.sets = {}, {}, {}
            self.gauges = {k: g for k, g in self.gauges.items() if now - g[1] <= self.gauge_idle}
            gauges = dict(self.gauges)
        ts = float(int(now))
        out: list[tuple[str, float, float]] = []
        for name, count in counters.items():
            out += [(f"stats.{name}", ts, count / interval), (f"stats_counts.{name}", ts, count)]
        for name, (value, _) in gauges.items():
            out.append((f"stats.gauges.{name}", ts, value))
        for name, members in sets.items():
            out.append((f"stats.sets.{name}.count", ts, float(len(members))))
        for name, timer in timers.items():
            try:
                stats = timer_stats(timer.values, timer.count, interval, self.percentiles)
            except ArithmeticError as exc:  # one timer's bad arithmetic costs only that timer
                self.stats.inc("statsd.dropped.timer_arithmetic")
                log.warning("statsd: timer %s dropped: %r", printable(name), exc)
                continue
            out += [(f"stats.timers.{name}.{k}", ts, v) for k, v in stats]
        return out


def timer_stats(
    values: list[float], count: float, interval: float, percentiles: list[float]
) -> list[tuple[str, float]]:
    """etsy statsd's timer statistics of one interval."""
    vals = sorted(values)
    n = len(vals)
    mean = _mean(vals)
    mid = n // 2
    median = vals[mid] if n % 2 else _mean(vals[mid - 1 : mid + 1])
    std = _std(vals, mean)
    out = [("count", count), ("count_ps", count / interval), ("lower", vals[0]),
           ("upper", vals[-1]), ("mean", mean), ("median", median), ("sum", sum(vals)),
           ("std", std)]  # fmt: skip
    for pct in percentiles:
        k = max(1, int(round(pct / 100 * n)))
        head = vals[:k]
        label = f"{pct:g}".replace(".", "_")
        out += [(f"count_{label}", float(k)), (f"mean_{label}", _mean(head)),
                (f"upper_{label}", head[-1]), (f"sum_{label}", sum(head))]  # fmt: skip
    return out


def _mean(vals: list[float]) -> float:
    """The mean of sorted finite values; finite even when their sum is not (1e308s)."""
    mean = sum(vals) / len(vals)
    if math.isfinite(mean):
        return mean
    m = max(abs(vals[0]), abs(vals[-1]))
    return math.fsum(v / m for v in vals) / len(vals) * m


def _std(vals: list[float], mean: float) -> float:
    """Population standard deviation.  A value near 1e154 overflows ``(v - mean) ** 2``
    (OverflowError), so large values are scaled down by the largest magnitude first."""
    m = max(abs(vals[0]), abs(vals[-1]))
    if m < 1e150:
        return math.sqrt(sum((v - mean) ** 2 for v in vals) / len(vals))
    centre = mean / m
    return math.sqrt(math.fsum((v / m - centre) ** 2 for v in vals) / len(vals)) * m


class StatsdListener(threading.Thread):
    """Reads datagrams from an already bound UDP socket into an Aggregator."""

    def __init__(self, sock: socket.socket, aggregator: Aggregator, counters: Counters) -> None:
        super().__init__(name="flux-statsd", daemon=True)
        self.sock, self.aggregator, self.counters = sock, aggregator, counters
        self.stopping = threading.Event()
        self.bugs = ThreadPolicy(self.name, log, counters)
        self._logged = 0.0
        sock.settimeout(0.2)

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                if self.stopping.is_set():
                    return
                continue
            try:
                self.handle(data)
            except Exception:  # noqa: BLE001 - a bug (ThreadPolicy logs it): the packet is dropped
                self.counters.inc("statsd.dropped.error")
                self.bugs.bug("a packet")
            else:
                self.bugs.ok()

    def handle(self, data: bytes) -> None:
        self.counters.inc("statsd.packets")
        samples, bad = parse_packet(data)
        if samples:
            self.aggregator.add(samples)
            self.counters.inc("statsd.samples", len(samples))
        for reason, line in bad:
            self.counters.inc(f"statsd.rejected.{reason}")
            if time.monotonic() - self._logged > 10:
                self._logged = time.monotonic()
                log.info("statsd: dropped (%s): %s", reason, printable(line))

    def stop(self) -> None:
        self.stopping.set()
        self.join(2)
        self.sock.close()
