"""What the storage benchmarks share (``utils/bench/store.py`` and its steady-state part,
``store_steady.py``): the seeded data, the timing (best of N, with CPU time, page faults
and Redis CPU time per unit) and the benchmark's keys in Redis."""

from __future__ import annotations

import gc
import resource
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import redis

PREFIX = "skybench:"
STEP = 60
CHUNK = 500  # keys per MGET, as skyline.store.timeseries.MGET_CHUNK
TARGET_READ = 60_000  # project target: metrics/s read+decode of 1,440 points, one core
DECODE_SAMPLE = 2000  # series held in memory for decode-only and read_many


def metric_name(i: int) -> str:
    return f"bench.host-{i // 25:05d}.service.metric_{i % 25:02d}"


def make_series(seed: int, index: int, points: int, end: int) -> tuple[np.ndarray, np.ndarray]:
    """One metric's minutely series: a level, a daily cycle, noise and rare spikes."""
    rng = np.random.default_rng([seed, index])
    t = end - STEP * np.arange(points - 1, -1, -1, dtype=np.int64)
    level = 10.0 ** rng.uniform(-1.0, 5.0)
    daily = 1.0 + 0.3 * np.sin(2 * np.pi * t / 86400.0 + rng.uniform(0, 2 * np.pi))
    values = level * daily * (1.0 + rng.normal(0.0, 0.05, points))
    spikes = rng.random(points) < 0.002
    values[spikes] *= rng.uniform(2.0, 5.0, int(spikes.sum()))
    return t, values


@dataclass
class Rate:
    wall: float  # units per wall-clock second (best repetition)
    cpu: float  # units per second of this process's CPU time, same repetition
    faults: float  # this process's minor page faults per unit, same repetition
    server_us: float  # Redis server CPU microseconds per unit (INFO cpu), same repetition
    server_faults: float | None  # Redis server minor page faults per unit, if visible


NO_RATE = Rate(0.0, 0.0, 0.0, 0.0, None)


class Clock:
    """Wall time, process CPU time, page faults and Redis CPU time since construction."""

    def __init__(self, r: redis.Redis) -> None:
        self.r = r
        self.s0 = _server_cpu(r)
        self.pid = int(r.info("server")["process_id"])
        self.sf0 = _server_faults(self.pid)
        self.t0, self.c0, self.f0 = time.perf_counter(), time.process_time(), _faults()

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def rate(self, done: int) -> Rate:
        wall, cpu = self.elapsed(), max(time.process_time() - self.c0, 1e-9)
        faults = _faults() - self.f0
        server = _server_cpu(self.r) - self.s0
        sf1 = _server_faults(self.pid)
        n = max(done, 1)
        server_faults = (sf1 - self.sf0) / n if sf1 is not None and self.sf0 is not None else None
        return Rate(done / wall, done / cpu, faults / n, server / n * 1e6, server_faults)


def _faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _server_faults(pid: int) -> int | None:
    """Minor page faults of the Redis process, when it runs on this host and is visible."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    if "redis" not in stat.split(")")[0]:
        return None  # a remote server: that pid is someone else here
    return int(stat.rsplit(")", 1)[1].split()[7])


def _server_cpu(r: redis.Redis) -> float:
    info = r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def best_of(step: Callable[[], int], r: redis.Redis, seconds: float, reps: int) -> Rate:
    """Call ``step`` (returns units done) repeatedly for ``seconds``; best of ``reps``."""
    best = NO_RATE
    for _ in range(reps):
        gc.collect()
        done = 0
        clock = Clock(r)
        while True:
            done += step()
            if clock.elapsed() >= seconds:
                break
        rate = clock.rate(done)
        if rate.wall > best.wall:
            best = rate
    return best


def cycle_chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    while True:
        for i in range(0, len(items), size):
            yield items[i : i + size]


# Redis --------------------------------------------------------------------------------
def series_key(fmt: str, metric: str) -> str:
    return f"{PREFIX}{fmt}:ts:{metric}"


def delete_prefix(r: redis.Redis, prefix: str = PREFIX) -> None:
    batch: list[bytes] = []
    for key in r.scan_iter(match=prefix + "*", count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            r.unlink(*batch)
            batch.clear()
    if batch:
        r.unlink(*batch)


def _num(x: float | None) -> str:
    if x is None:
        return ""
    return f"{x:,.2f}" if x < 100 else f"{x:,.0f}"
