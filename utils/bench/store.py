#!/usr/bin/env python
"""Storage benchmark: Skyline's fixed-width numpy records against msgpack pairs.

Both formats hold the same seeded data in one Redis string per metric:

* records: ``skyline.store.timeseries`` -- 12-byte ``<uint32 ts, float64 value>`` records,
  led by a header record (as roomba leaves a series), decoded with
  ``decode`` + ``prepare`` (the store's real read path);
* msgpack: the reference system's concatenated ``packb((ts, value))`` pairs,
  decoded with ``msgpack.Unpacker(use_list=False)`` into tuples, then numpy.

Measured per format: bytes per point; APPEND throughput with the encoding timed
(1 point per metric x 5,000 metrics and 10 points per metric x 500 metrics per round
trip, sent as one RESP payload -- records through ``TimeSeriesStore.append_batch`` --
and through a redis-py pipeline); MGET-only, MGET + decode and decode-only
throughput; records only: ``append_grouped``, ``read_many``, pipelined GETs (what a
Redis Cluster client must do) and incremental reads with ``read_since``.  Rows
marked "proposed" time code that is not in ``skyline.store.timeseries`` (a bulk decode of
an MGET chunk, batched incremental reads) to size possible changes.  Each read row
also reports client and Redis CPU time and page faults per metric.

The client is one process on one thread; Redis runs as its own process.  Every
figure is the best of three repetitions of ``--seconds`` each.  With no
``--redis-url`` an embedded Redis (unix socket, temp dir) is started and stopped;
with one, only keys under ``skybench:`` are written and they are deleted at the end.

    python utils/bench/store.py [--redis-url URL] [--metrics 10000] [--points 1440]
                                [--seconds 1] [--reps 3] [--chunk 500]
                                [--malloc default|tuned] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import gc
import json
import os
import resource
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import msgpack  # noqa: E402
import numpy as np  # noqa: E402
import redis  # noqa: E402
from redis.backoff import NoBackoff  # noqa: E402
from redis.retry import Retry  # noqa: E402

from skyline.store import raw as redis_raw  # noqa: E402
from skyline.store.connection import EmbeddedRedis  # noqa: E402
from skyline.store.keys import RedisKeys  # noqa: E402
from skyline.store.sealed import is_sealed, read_header, unseal  # noqa: E402
from skyline.store.timeseries import (  # noqa: E402
    HEAD_SIZE,
    RECORD,
    RECORD_SIZE,
    Cursor,
    TimeSeriesStore,
    decode,
    encode,
    encode_small,
    header,
    prepare,
    to_series_many,
)

PREFIX = "skybench:"
STEP = 60
CHUNK = 500  # keys per MGET, as skyline.store.timeseries.MGET_CHUNK
APPEND_BATCH = 5000  # datapoints per pipeline round trip
DECODE_SAMPLE = 2000  # series held in memory for decode-only and read_many
TARGET_READ = 60_000  # project target: metrics/s read+decode of 1,440 points, one core
REPS = 3
FORMATS = ("records", "msgpack")


# Data ---------------------------------------------------------------------------------
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


def records_value(t: np.ndarray, v: np.ndarray) -> bytes:
    """A series as roomba leaves it: header record, then the points."""
    return header(1) + encode(t, v)


def msgpack_value(t: np.ndarray, v: np.ndarray) -> bytes:
    packb = msgpack.packb
    return b"".join([packb(p) for p in zip(t.tolist(), v.tolist(), strict=True)])


ENCODERS = {"records": records_value, "msgpack": msgpack_value}


def decode_records(buf: bytes) -> tuple[np.ndarray, np.ndarray]:
    series = prepare(decode(buf)[0])
    return series.timestamps, series.values


def decode_msgpack(buf: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Unpacker -> list of (ts, value) tuples -> int64 and float64 arrays.

    ``np.fromiter`` over the tuples is the fastest conversion measured here (about
    1.6x faster than ``np.array(pairs)``), so msgpack gets its best case.
    """
    unpacker = msgpack.Unpacker(use_list=False)
    unpacker.feed(buf)
    pairs = list(unpacker)
    n = len(pairs)
    ts = np.fromiter((p[0] for p in pairs), np.int64, n)
    vs = np.fromiter((p[1] for p in pairs), np.float64, n)
    return ts, vs


DECODERS = {"records": decode_records, "msgpack": decode_msgpack}


# Proposed changes (not in skyline.store.timeseries) -------------------------------------------
# The bulk decoder the bench once proposed is now the store's real read path.
proposed_decode_many = to_series_many


def proposed_read_since_many(
    store: TimeSeriesStore, metrics: Sequence[str], cursors: dict[str, Cursor]
) -> int:
    """``read_since`` for many metrics in one round trip (tail + head per metric)."""
    pipe = store.redis.pipeline(transaction=False)
    for m in metrics:
        key = store.keys.series(m)
        pipe.getrange(key, cursors[m].offset, -1)
        pipe.getrange(key, 0, HEAD_SIZE - 1)
    replies = pipe.execute()
    got = 0
    for i, m in enumerate(metrics):
        tail, head = replies[2 * i], replies[2 * i + 1]
        cur = cursors[m]
        if head != cur.head:
            rec, cursors[m], _ = store.read_since(m, None)
        else:
            usable = len(tail) - len(tail) % RECORD_SIZE
            rec = np.frombuffer(tail, RECORD, count=usable // RECORD_SIZE)
            cursors[m] = Cursor(cur.offset + usable, head)
        got += len(rec) > 0
    return got


# Timing -------------------------------------------------------------------------------
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


def seed(
    r: redis.Redis, fmt: str, metrics: Sequence[str], points: int, seed_: int, end: int
) -> None:
    enc = ENCODERS[fmt]
    pipe = r.pipeline(transaction=False)
    for i, m in enumerate(metrics):
        pipe.set(series_key(fmt, m), enc(*make_series(seed_, i, points, end)))
        if len(pipe) >= CHUNK:
            pipe.execute()
    pipe.execute()


def verify(
    r: redis.Redis, fmt: str, metrics: Sequence[str], points: int, seed_: int, end: int
) -> bool:
    """Every sampled series decodes to exactly the arrays it was seeded from."""
    bufs = r.mget([series_key(fmt, m) for m in metrics])
    for i, buf in enumerate(bufs):
        t, v = DECODERS[fmt](buf)
        t0, v0 = make_series(seed_, i, points, end)
        if t.dtype != np.int64 or v.dtype != np.float64:
            return False
        if not (np.array_equal(t, t0) and np.array_equal(v, v0)):
            return False
    return True


def bytes_per_point(
    r: redis.Redis, fmt: str, metrics: Sequence[str], points: int
) -> tuple[float, float]:
    """(STRLEN / points, MEMORY USAGE / points) averaged over a sample of keys."""
    sample = [series_key(fmt, m) for m in metrics[:200]]
    pipe = r.pipeline(transaction=False)
    for k in sample:
        pipe.strlen(k)
        pipe.memory_usage(k, samples=0)
    res = pipe.execute()
    strlen = sum(res[0::2]) / len(sample) / points
    usage = sum(res[1::2]) / len(sample) / points
    return strlen, usage


# Workloads ----------------------------------------------------------------------------
def append_step(
    r: redis.Redis, fmt: str, n_metrics: int, per_append: int, mode: str
) -> Callable[[], int]:
    """One round trip: ``n_metrics`` APPENDs of ``per_append`` new points each.

    The input is what a parser hands over: Python lists of names, timestamps and
    values; encoding is timed.  mode:

    * "raw": the whole batch as one RESP payload (``skyline.store.raw``).  records:
      ``TimeSeriesStore.append_batch`` (numpy-encoded batch; announce/changed off, so
      only APPENDs), the store's ingest path; msgpack: ``packb`` per point.
    * "pipeline": a redis-py pipeline; records: ``encode_small`` per metric (what
      ``append_grouped`` uses); msgpack: ``packb`` per point.
    * "grouped": records through ``TimeSeriesStore.append_grouped`` (with its SADD).
    """
    names = [f"append.{per_append}.{metric_name(i)}" for i in range(n_metrics)]
    keys = [series_key(fmt, m) for m in names]
    bkeys = [k.encode() for k in keys]
    ids = [i for i in range(n_metrics) for _ in range(per_append)]
    rng = np.random.default_rng(7)
    values = (1000.0 * (1.0 + rng.normal(0.0, 0.05, n_metrics * per_append))).tolist()
    store = TimeSeriesStore(r, RedisKeys(f"{PREFIX}{fmt}:"))
    state = {"t": int(time.time()) // STEP * STEP}
    packb = msgpack.packb

    def step() -> int:
        t0 = state["t"]
        state["t"] = t0 + STEP * per_append
        stamps = [t0 + STEP * j for j in range(per_append)]
        if mode == "grouped":
            grouped = {
                m: (stamps, values[i * per_append : (i + 1) * per_append])
                for i, m in enumerate(names)
            }
            return store.append_grouped(grouped)
        if mode == "raw" and fmt == "records":
            return store.append_batch(
                ids, stamps * n_metrics, values, names, changed=False, announce=False
            )
        packed = []
        for i in range(n_metrics):
            vs = values[i * per_append : (i + 1) * per_append]
            if fmt == "records":
                packed.append(encode_small(stamps, vs))
            else:
                packed.append(b"".join([packb(p) for p in zip(stamps, vs, strict=True)]))
        if mode == "raw":
            payload = b"".join([redis_raw.append(k, v) for k, v in zip(bkeys, packed, strict=True)])
            redis_raw.execute(r, payload, n_metrics)
        else:
            pipe = r.pipeline(transaction=False)
            for k, v in zip(keys, packed, strict=True):
                pipe.append(k, v)
            pipe.execute()
        return n_metrics * per_append

    return step


def read_step(
    r: redis.Redis, fmt: str, metrics: Sequence[str], chunk: int, how: str
) -> Callable[[], int]:
    """One round trip for ``chunk`` keys.

    how: "mget" (MGET, no decode), "decode" (MGET, decode each), "bulk" (MGET, proposed
    bulk decode) or "get" (a pipeline of single-key GETs, decode each: what a Redis
    Cluster client has to do, since MGET must not span hash slots).
    """
    chunks = cycle_chunks([series_key(fmt, m) for m in metrics], chunk)
    dec = DECODERS[fmt]

    def step() -> int:
        keys = next(chunks)
        if how == "get":
            pipe = r.pipeline(transaction=False)
            for k in keys:
                pipe.get(k)
            bufs = pipe.execute()
        else:
            bufs = r.mget(keys)
        if how in ("decode", "get"):
            for b in bufs:
                dec(b)
        elif how == "bulk":
            proposed_decode_many(bufs)
        return len(bufs)

    return step


def decode_step(bufs: Sequence[bytes], fmt: str, chunk: int, bulk: bool) -> Callable[[], int]:
    chunks = cycle_chunks(bufs, chunk)
    dec = DECODERS[fmt]

    def step() -> int:
        part = next(chunks)
        if bulk:
            proposed_decode_many(part)
        else:
            for b in part:
                dec(b)
        return len(part)

    return step


def incremental(
    r: redis.Redis,
    metrics: Sequence[str],
    seconds: float,
    reps: int,
    batched: bool,
    last_ts: list[int],
) -> Rate:
    """Metrics/s reading 1 new point per metric from a cursor (records only).

    Before each repetition one point, newer than ``last_ts[0]``, is appended to every
    metric (untimed); ``last_ts`` is advanced so later calls keep series in order.
    """
    store = TimeSeriesStore(r, RedisKeys(f"{PREFIX}records:"))
    cursors = {m: store.read_since(m, None)[1] for m in metrics}
    best = NO_RATE
    for _ in range(reps):
        last_ts[0] += STEP
        store.append_grouped({m: ([last_ts[0]], [1.5]) for m in metrics})  # untimed
        gc.collect()
        done, bad = 0, 0
        clock = Clock(r)
        if batched:
            for i in range(0, len(metrics), CHUNK):
                done += proposed_read_since_many(store, metrics[i : i + CHUNK], cursors)
                if clock.elapsed() >= seconds:
                    break
        else:
            for m in metrics:
                rec, cursors[m], whole = store.read_since(m, cursors[m])
                done += 1
                bad += whole or len(rec) == 0  # >1 if the last repetition stopped early
                if clock.elapsed() >= seconds:
                    break
        if bad:
            raise RuntimeError(f"read_since returned unexpected data for {bad} metrics")
        rate = clock.rate(done)
        if rate.wall > best.wall:
            best = rate
    return best


# Orchestration ------------------------------------------------------------------------
def run_format(
    r: redis.Redis, fmt: str, args: argparse.Namespace, end: int
) -> dict[str, Rate | float | bool]:
    """Seed one format, take the comparable measurements, delete its keys."""
    metrics = [metric_name(i) for i in range(args.metrics)]
    out: dict[str, Rate | float | bool] = {}
    t0 = time.perf_counter()
    seed(r, fmt, metrics, args.points, args.seed, end)
    out["seed_s"] = time.perf_counter() - t0
    sample = metrics[: min(len(metrics), CHUNK)]
    out["verified"] = verify(r, fmt, sample, args.points, args.seed, end)
    out["bytes_per_point"], out["memory_bytes_per_point"] = bytes_per_point(
        r, fmt, metrics, args.points
    )
    s, reps, chunk = args.seconds, args.reps, args.chunk
    n1 = min(APPEND_BATCH, args.metrics)
    n10 = max(1, min(APPEND_BATCH // 10, args.metrics))
    out["append"] = best_of(append_step(r, fmt, n1, 1, "raw"), r, s, reps)
    out["append10"] = best_of(append_step(r, fmt, n10, 10, "raw"), r, s, reps)
    out["append_pipeline"] = best_of(append_step(r, fmt, n1, 1, "pipeline"), r, s, reps)
    out["append10_pipeline"] = best_of(append_step(r, fmt, n10, 10, "pipeline"), r, s, reps)
    out["mget"] = best_of(read_step(r, fmt, metrics, chunk, "mget"), r, s, reps)
    out["read_decode"] = best_of(read_step(r, fmt, metrics, chunk, "decode"), r, s, reps)
    bufs = r.mget([series_key(fmt, m) for m in metrics[:DECODE_SAMPLE]])
    out["decode"] = best_of(decode_step(bufs, fmt, chunk, False), r, s, reps)
    del bufs
    delete_prefix(r, f"{PREFIX}{fmt}:")
    return out


# Steady state of the sealed format ------------------------------------------------------
KINDS = ("nab", "counter", "gauge", "noise")
NAB_DIR = ROOT.parent / "shared" / "nab" / "data"


def nab_values(points: int) -> list[np.ndarray]:
    """Every NAB series long enough, first ``points`` values (none without the data)."""
    out = []
    for path in sorted(NAB_DIR.glob("*/*.csv")):
        lines = path.read_text().splitlines()[1:]
        if len(lines) >= points:
            out.append(np.array([float(line.rsplit(",", 1)[1]) for line in lines[:points]]))
    return out


def realistic_values(kind: str, index: int, points: int, nab: list[np.ndarray],
                     seed_: int) -> np.ndarray:  # fmt: skip
    """Values of one metric of ``kind``: a NAB series (cycled), a counter (cumulative
    Poisson increments), a gauge with 0-3 decimals, or full-precision noise."""
    rng = np.random.default_rng([seed_, index])
    if kind == "nab" and nab:
        return nab[index % len(nab)][:points]
    if kind == "counter":
        return np.cumsum(rng.poisson(rng.uniform(1, 5000), points)).astype(np.float64)
    if kind in ("gauge", "nab"):
        level, decimals = 10.0 ** rng.uniform(-1, 4), int(rng.integers(0, 4))
        cycle = 1 + 0.2 * np.sin(np.arange(points) * 2 * np.pi / 1440 + rng.uniform(0, 6))
        return np.round(level * cycle * (1 + rng.normal(0, 0.02, points)), decimals)
    return make_series(seed_, index, points, 1 << 30)[1]


@dataclass
class Steady:
    live: dict[str, list[float]]  # kind -> MEMORY USAGE bytes/point at each sample
    strlen: dict[str, float]
    sealed: dict[str, float]  # kind -> block bytes per sealed point
    rewritten: int
    read_many: Rate
    read_since: Rate
    read_many_records: Rate  # the same points as records only (the format before)
    verified: bool


def steady_state(r: redis.Redis, args: argparse.Namespace, end: int) -> Steady:
    """``--steady-metrics`` metrics (a quarter of each kind) get a day of minutely
    points appended raw and sealed by one roomba pass, then ``--steady-hours`` hours
    of one point a minute, each minute one append_batch and one roomba pass
    (``trim_many``, 24 h window, 600 s grace, as horizon runs it).  MEMORY USAGE is
    sampled every minute of the last hour (a rewrite is due about every 10 minutes, so
    the samples see series at every age since their rewrite).  Then the read path on
    those series, and ``read_many`` of the same points stored as records only (the
    format before sealed blocks), for comparison in the same conditions."""
    n, points = args.steady_metrics, args.points
    nab = nab_values(points + 60 * args.steady_hours)
    kinds = [KINDS[i % len(KINDS)] for i in range(n)]
    metrics = [f"{kinds[i]}.{metric_name(i)}" for i in range(n)]
    total = points + 60 * args.steady_hours
    values = [realistic_values(k, i, total, nab, args.seed) for i, k in enumerate(kinds)]
    store = TimeSeriesStore(r, RedisKeys(f"{PREFIX}steady:"))
    start = end - STEP * total
    t0 = start + STEP * np.arange(points, dtype=np.int64)
    for i, m in enumerate(metrics):  # a day appended raw, then sealed by a pass
        r.append(store.keys.series(m), encode(t0, values[i][:points]))
    r.sadd(store.keys.metrics(), *metrics)
    now = int(t0[-1])
    rewritten = store.trim_many(metrics, now, 86400, 600, 86400)["rewritten"]
    live: dict[str, list[float]] = {k: [] for k in (*KINDS, "realistic", "all")}
    ids = np.arange(n)
    for minute in range(60 * args.steady_hours):
        now += STEP
        v = np.array([values[i][points + minute] for i in range(n)])
        store.append_batch(ids, np.full(n, now), v, metrics, announce=False)
        rewritten += store.trim_many(metrics, now, 86400, 600, 86400).get("rewritten", 0)
        if minute >= 60 * args.steady_hours - 60:  # every minute of the last hour
            for kind, per_point in _memory_per_point(r, store, metrics, kinds).items():
                live[kind].append(per_point)
    strlen, sealed = _sizes(r, store, metrics, kinds)
    verified = _verify(store, metrics, values, now, points)
    few = metrics[: min(n, DECODE_SAMPLE)]
    s, reps = args.seconds, args.reps
    read_many = best_of(lambda: len(store.read_many(few)), r, s, reps)
    cursors = {m: c for m, _, c, _ in store.read_since_many(dict.fromkeys(metrics))}
    clock = [now]

    def since() -> int:
        clock[0] += STEP
        store.append_batch(ids, np.full(n, clock[0]), np.ones(n), metrics, announce=False)
        got = 0
        for m, rec, c, _ in store.read_since_many(cursors):
            cursors[m] = c
            got += len(rec) > 0
        return got

    read_since = best_of(since, r, s, reps)
    old = TimeSeriesStore(r, RedisKeys(f"{PREFIX}steady-records:"))
    pipe = r.pipeline(transaction=False)
    for m, series in store.read_many(few).items():
        pipe.set(old.keys.series(m), header(1) + encode(series.timestamps, series.values))
    pipe.execute()
    records = best_of(lambda: len(old.read_many(few)), r, s, reps)
    delete_prefix(r, f"{PREFIX}steady")
    return Steady(live, strlen, sealed, rewritten, read_many, read_since, records, verified)


def _by_kind(
    kinds: list[str], numbers: Sequence[float], counts: Sequence[float]
) -> dict[str, float]:
    out: dict[str, float] = {}
    for kind in (*KINDS, "realistic", "all"):
        pick = [i for i, k in enumerate(kinds)
                if kind == "all" or k == kind or (kind == "realistic" and k != "noise")]  # fmt: skip
        points = sum(counts[i] for i in pick)
        out[kind] = sum(numbers[i] for i in pick) / points if points else 0.0
    return out


def _memory_per_point(r: redis.Redis, store: TimeSeriesStore, metrics: list[str],
                      kinds: list[str]) -> dict[str, float]:  # fmt: skip
    pipe = r.pipeline(transaction=False)
    for m in metrics:
        pipe.memory_usage(store.keys.series(m), samples=0)
    usage = pipe.execute()
    counts = [len(s) for s in store.read_many(metrics).values()]
    return _by_kind(kinds, usage, counts)


def _sizes(r: redis.Redis, store: TimeSeriesStore, metrics: list[str],
           kinds: list[str]) -> tuple[dict[str, float], dict[str, float]]:  # fmt: skip
    """STRLEN per point, and sealed block bytes per sealed point."""
    raws = store.read_raw_many(metrics)
    counts = [len(s) for s in store.read_many(metrics).values()]
    blocks, sealed_points = [], []
    for raw in raws:
        head = read_header(raw or b"") if is_sealed(raw or b"") else None
        blocks.append(head.block if head else 0)
        sealed_points.append(len(unseal(raw or b"", head)[0]) if head else 0)
    return (_by_kind(kinds, [len(x or b"") for x in raws], counts),
            _by_kind(kinds, blocks, sealed_points))  # fmt: skip


def _verify(store: TimeSeriesStore, metrics: list[str], values: list[np.ndarray], now: int,
            points: int) -> bool:  # fmt: skip
    """Every stored series is exactly the last day of what was appended, bit for bit."""
    got = store.read_many(metrics)
    for i, m in enumerate(metrics):
        s = got[m]
        want_t = np.arange(now - STEP * (len(values[i]) - 1), now + 1, STEP)
        if not len(s) or not (
            s.timestamps[0] == want_t[0] or now - 86400 - 660 <= s.timestamps[0] <= now - 86400
        ):
            return False  # all, or the window and at most the grace and a pass more
        keep = want_t >= s.timestamps[0]
        if not (np.array_equal(s.timestamps, want_t[keep])
                and np.array_equal(s.values.view(np.int64), values[i][keep].view(np.int64))):  # fmt: skip
            return False
    return True


def run_records_extras(
    r: redis.Redis, args: argparse.Namespace, end: int
) -> dict[str, Rate | float | bool]:
    """Records only, after both formats were compared: the store's own entry points
    (append_grouped, read_many, read_since) and the proposed variants."""
    fmt = "records"
    metrics = [metric_name(i) for i in range(args.metrics)]
    seed(r, fmt, metrics, args.points, args.seed, end)
    s, reps, chunk = args.seconds, args.reps, args.chunk
    n1 = min(APPEND_BATCH, args.metrics)
    store = TimeSeriesStore(r, RedisKeys(f"{PREFIX}{fmt}:"))
    few = metrics[:DECODE_SAMPLE]
    bufs = r.mget([series_key(fmt, m) for m in few])
    out: dict[str, Rate | float | bool] = {
        "bulk_decode": best_of(decode_step(bufs, fmt, chunk, True), r, s, reps),
        "bulk_read_decode": best_of(read_step(r, fmt, metrics, chunk, "bulk"), r, s, reps),
        "read_many": best_of(lambda: len(store.read_many(few)), r, s, reps),
        "get_decode": best_of(read_step(r, fmt, metrics, chunk, "get"), r, s, reps),
        "grouped_append": best_of(append_step(r, fmt, n1, 1, "grouped"), r, s, reps),
    }
    del bufs
    last_ts = [end]
    out["incremental"] = incremental(r, metrics, s, reps, False, last_ts)
    out["incremental_batched"] = incremental(r, metrics, s, reps, True, last_ts)
    delete_prefix(r, f"{PREFIX}{fmt}:")
    return out


def headline(res: dict[str, dict], args: argparse.Namespace, env: dict[str, object]) -> dict:
    rec, mp = res["records"], res["msgpack"]
    h: dict[str, object] = {
        **env,
        "metrics": args.metrics,
        "points": args.points,
        "seconds": args.seconds,
        "reps": args.reps,
        "mget_chunk": args.chunk,
        "malloc": args.malloc,
        "verified_identical": bool(rec["verified"] and mp["verified"]),
    }
    for fmt, d in res.items():
        h[f"{fmt}_bytes_per_point"] = round(d["bytes_per_point"], 3)
        h[f"{fmt}_memory_bytes_per_point"] = round(d["memory_bytes_per_point"], 3)
        for name, val in d.items():
            if not isinstance(val, Rate):
                continue
            unit = "points" if "append" in name else "metrics"
            h[f"{fmt}_{name}_{unit}_per_s"] = round(val.wall)
            if name in ("mget", "read_decode", "bulk_read_decode", "read_many", "get_decode"):
                h[f"{fmt}_{name}_client_cpu_us_per_metric"] = round(1e6 / val.cpu, 2)
                h[f"{fmt}_{name}_redis_cpu_us_per_metric"] = round(val.server_us, 2)
                h[f"{fmt}_{name}_faults_per_metric"] = round(val.faults, 2)
                if val.server_faults is not None:
                    h[f"{fmt}_{name}_redis_faults_per_metric"] = round(val.server_faults, 2)
    for name in ("read", "decode", "append", "append10", "append_pipeline", "mget"):
        key = "read_decode" if name == "read" else name
        h[f"records_vs_msgpack_{name}_ratio"] = round(rec[key].wall / mp[key].wall, 2)
    h["msgpack_vs_records_bytes_ratio"] = round(mp["bytes_per_point"] / rec["bytes_per_point"], 3)
    h["target_read_decode_metrics_per_s"] = TARGET_READ
    h["records_read_decode_meets_target"] = (
        args.points == 1440 and rec["read_decode"].wall >= TARGET_READ
    )
    h["records_read_decode_vs_target"] = round(rec["read_decode"].wall / TARGET_READ, 2)
    return h


def steady_headline(st: Steady, args: argparse.Namespace) -> dict[str, object]:
    h: dict[str, object] = {
        "steady_metrics": args.steady_metrics,
        "steady_hours": args.steady_hours,
        "steady_rewrites": st.rewritten,
        "steady_verified_identical": st.verified,
        "steady_read_many_metrics_per_s": round(st.read_many.wall),
        "steady_read_many_client_cpu_us_per_metric": round(1e6 / st.read_many.cpu, 2),
        "steady_read_many_redis_cpu_us_per_metric": round(st.read_many.server_us, 2),
        "steady_read_since_many_metrics_per_s": round(st.read_since.wall),
        "steady_read_many_records_metrics_per_s": round(st.read_many_records.wall),
        "steady_read_many_records_client_cpu_us_per_metric": round(
            1e6 / st.read_many_records.cpu, 2
        ),
        "target_steady_live_bytes_per_point": 12,
        "target_sealed_bytes_per_point": 4,
    }
    for kind, samples in st.live.items():
        h[f"steady_live_bytes_per_point_{kind}_mean"] = round(float(np.mean(samples)), 2)
        h[f"steady_live_bytes_per_point_{kind}_max"] = round(float(np.max(samples)), 2)
        h[f"steady_strlen_bytes_per_point_{kind}"] = round(st.strlen[kind], 2)
        h[f"sealed_bytes_per_point_{kind}"] = round(st.sealed[kind], 2)
    return h


def steady_table(st: Steady, args: argparse.Namespace, env: dict[str, object]) -> str:
    lines = [
        "",
        f"Sealed format, steady state: {args.steady_metrics} metrics (NAB, counters, gauges with "
        f"decimals, full-precision noise: a quarter each), a day sealed then "
        f"{args.steady_hours} h of one point a minute with a roomba pass each minute "
        f"({st.rewritten} rewrites); {env.get('transport')}, Redis {env.get('redis_version')}; "
        f"data identical to what was appended: {st.verified}",
        "",
        f"{'bytes per point':<34}" + "".join(f"{k:>11}" for k in (*KINDS, "realistic", "all")),
    ]
    rows = [
        ("live, MEMORY USAGE, mean", {k: float(np.mean(v)) for k, v in st.live.items()}),
        ("live, MEMORY USAGE, max", {k: float(np.max(v)) for k, v in st.live.items()}),
        ("live, STRLEN", st.strlen),
        ("sealed block", st.sealed),
    ]
    for label, d in rows:
        lines.append(
            f"{label:<34}" + "".join(f"{d[k]:>11.2f}" for k in (*KINDS, "realistic", "all"))
        )
    lines += [
        "",
        f"TimeSeriesStore.read_many({min(args.steady_metrics, DECODE_SAMPLE)}) metrics/s: "
        f"{st.read_many.wall:,.0f} (client CPU {1e6 / st.read_many.cpu:.1f} us/metric, Redis "
        f"{st.read_many.server_us:.1f} us/metric); read_since_many, 1 new point: "
        f"{st.read_since.wall:,.0f} metrics/s",
        f"the same points as records only (before sealed blocks): read_many "
        f"{st.read_many_records.wall:,.0f} metrics/s (client CPU "
        f"{1e6 / st.read_many_records.cpu:.1f} us/metric)",
        f"targets: live <= 12 ({'met' if st.live['realistic'] and max(st.live['realistic']) <= 12 else 'NOT met'} "
        f"on realistic metrics), sealed <= 4 "
        f"({'met' if st.sealed['realistic'] <= 4 else 'NOT met'}), read_many >= {TARGET_READ:,} "
        f"({'met' if st.read_many.wall >= TARGET_READ else 'NOT met'})",
    ]
    return "\n".join(lines)


def _num(x: float | None) -> str:
    if x is None:
        return ""
    return f"{x:,.2f}" if x < 100 else f"{x:,.0f}"


def _read_rows(label: str, a: Rate, b: Rate | None) -> list[tuple[str, float, float | None]]:
    return [
        (label, a.wall, b.wall if b else None),
        ("  client CPU us/metric", 1e6 / a.cpu, 1e6 / b.cpu if b else None),
        ("  Redis CPU us/metric", a.server_us, b.server_us if b else None),
        ("  client page faults/metric", a.faults, b.faults if b else None),
        ("  Redis page faults/metric", a.server_faults, b.server_faults if b else None),
    ]


def table(res: dict[str, dict], args: argparse.Namespace, env: dict[str, object]) -> str:
    rec, mp = res["records"], res["msgpack"]
    n1, n10 = min(APPEND_BATCH, args.metrics), max(1, min(APPEND_BATCH // 10, args.metrics))
    rows: list[tuple[str, float, float | None]] = [
        ("bytes/point (STRLEN)", rec["bytes_per_point"], mp["bytes_per_point"]),
        ("bytes/point (MEMORY USAGE)", rec["memory_bytes_per_point"], mp["memory_bytes_per_point"]),
        ("APPEND points/s, one RESP payload per round trip:", 0.0, None),
        (f"  1 pt x {n1} metrics (records: append_batch)", rec["append"].wall, mp["append"].wall),
        (
            f"  10 pts x {n10} metrics (records: append_batch)",
            rec["append10"].wall,
            mp["append10"].wall,
        ),
        ("APPEND points/s, redis-py pipeline per round trip:", 0.0, None),
        (f"  1 pt x {n1} metrics", rec["append_pipeline"].wall, mp["append_pipeline"].wall),
        (f"  10 pts x {n10} metrics", rec["append10_pipeline"].wall, mp["append10_pipeline"].wall),
        *_read_rows(f"MGET only metrics/s, {args.chunk} keys/MGET", rec["mget"], mp["mget"]),
        *_read_rows("MGET + decode metrics/s", rec["read_decode"], mp["read_decode"]),
        ("decode only metrics/s (no Redis)", rec["decode"].wall, mp["decode"].wall),
        ("records, the store's own entry points:", 0.0, None),
        (f"TimeSeriesStore.append_grouped pts/s, 1 pt x {n1}", rec["grouped_append"].wall, None),
        *_read_rows(
            f"TimeSeriesStore.read_many({min(args.metrics, DECODE_SAMPLE)}) metrics/s",
            rec["read_many"],
            None,
        ),
        ("TimeSeriesStore.read_since metrics/s, 1 new pt", rec["incremental"].wall, None),
        *_read_rows(f"pipelined GET x{args.chunk} + decode metrics/s", rec["get_decode"], None),
        ("records, proposed (not in skyline.store.timeseries):", 0.0, None),
        ("bulk decode only metrics/s", rec["bulk_decode"].wall, None),
        *_read_rows("MGET + bulk decode metrics/s", rec["bulk_read_decode"], None),
        ("batched read_since metrics/s, 1 new pt", rec["incremental_batched"].wall, None),
    ]
    lines = [
        f"Skyline storage benchmark: {args.metrics} metrics x {args.points} points; "
        f"{env['transport']}, Redis {env['redis_version']}; best of {args.reps} x "
        f"{args.seconds:g} s; malloc {args.malloc}"
        + "".join(f" {k}={v}" for k, v in env["malloc_env"].items())  # type: ignore[union-attr]
        + f"; load average {env['loadavg_start']} at start",
        f"seeding took {rec['seed_s']:.1f} s (records), {mp['seed_s']:.1f} s (msgpack); "
        f"decoded data identical to the seed: {rec['verified'] and mp['verified']}",
        "",
        f"{'measure':<52} {'records':>11} {'msgpack':>11} {'rec/mp':>7}",
        "-" * 84,
    ]
    for label, a, b in rows:
        if label.endswith(":"):
            lines.append(label)
            continue
        ratio = f"{a / b:.2f}" if b and not label.endswith("/metric") else ""
        lines.append(f"{label:<52} {_num(a):>11} {_num(b):>11} {ratio:>7}")
    met = rec["read_decode"].wall >= TARGET_READ
    verdict = ("met" if met else "NOT met") if args.points == 1440 else "n/a, needs --points 1440"
    lines += [
        "",
        f"target: read+decode >= {TARGET_READ:,} metrics/s of 1,440 points on one core: "
        f"records {rec['read_decode'].wall:,.0f} = {rec['read_decode'].wall / TARGET_READ:.2f}x "
        f"the target -> {verdict}",
    ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--redis-url", help="use this Redis (e.g. redis://127.0.0.1:6379/14)")
    p.add_argument("--metrics", type=int, default=10_000)
    p.add_argument("--points", type=int, default=1440)
    p.add_argument("--seconds", type=float, default=1.0, help="duration of one repetition")
    p.add_argument("--chunk", type=int, default=CHUNK, help="keys per MGET")
    p.add_argument("--reps", type=int, default=REPS, help="repetitions; the best is reported")
    p.add_argument("--seed", type=int, default=20261123)
    p.add_argument(
        "--malloc",
        choices=("default", "tuned"),
        default="default",
        help="tuned: glibc keeps freed memory (mallopt M_MMAP_THRESHOLD 32 MiB, "
        "M_TRIM_THRESHOLD 512 MiB) instead of returning it to the OS after every chunk",
    )
    p.add_argument("--json", action="store_true", help="end with one line of JSON headline figures")
    p.add_argument("--steady-metrics", type=int, default=2000,
                   help="metrics of the steady-state run (a quarter each: NAB, counter, gauge, "
                   "noise)")  # fmt: skip
    p.add_argument("--steady-hours", type=int, default=3,
                   help="hours of minutely appends and roomba passes after the first day")  # fmt: skip
    p.add_argument("--only", choices=("all", "steady"), default="all",
                   help="steady: only the steady-state run of the sealed format")  # fmt: skip
    args = p.parse_args(argv)
    if min(args.metrics, args.chunk, args.reps, args.steady_metrics, args.steady_hours) < 1 or (
        args.points < 2 or args.seconds <= 0
    ):
        p.error("--metrics, --chunk, --reps >= 1, --points >= 2 and --seconds > 0 are required")
    return args


@contextlib.contextmanager
def connection(url: str | None) -> Iterator[tuple[redis.Redis, str]]:
    if url:
        client = redis.Redis.from_url(url, socket_timeout=60)
        try:
            yield client, f"TCP {url}" if url.startswith("redis") else url
        finally:
            delete_prefix(client)
            client.close()
        return
    with tempfile.TemporaryDirectory(prefix="skybench-") as tmp:
        server = EmbeddedRedis(tmp, persist=False)
        server.start()
        try:
            client = redis.Redis(unix_socket_path=str(server.socket), socket_timeout=60)
            yield client, "embedded Redis, unix socket"
            client.close()
        finally:
            stop_embedded(server)


def stop_embedded(server: EmbeddedRedis) -> None:
    """Shut the embedded server down at once, then let ``stop`` tidy up.

    (redis-py retries a SHUTDOWN whose connection drops, with backoff, for ~4 s.)
    """
    quick = redis.Redis(unix_socket_path=str(server.socket), retry=Retry(NoBackoff(), 0))
    with contextlib.suppress(redis.RedisError, OSError):
        quick.shutdown(nosave=True)
    quick.close()
    server.stop()


def _loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def tune_malloc() -> None:
    """Stop glibc from unmapping freed memory, so big reply buffers are not re-faulted."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    m_trim_threshold, m_mmap_threshold = -1, -3
    if not (libc.mallopt(m_mmap_threshold, 32 << 20) and libc.mallopt(m_trim_threshold, 512 << 20)):
        raise SystemExit("--malloc tuned needs glibc's mallopt")


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.malloc == "tuned":
        tune_malloc()
    end = int(time.time()) // STEP * STEP
    env: dict[str, object] = {"loadavg_start": _loadavg()}
    with connection(args.redis_url) as (r, transport):
        env["transport"] = transport
        env["redis_version"] = str(r.info("server")["redis_version"])
        delete_prefix(r)
        results = {}
        if args.only == "all":
            results = {fmt: run_format(r, fmt, args, end) for fmt in FORMATS}
            results["records"].update(run_records_extras(r, args, end))
        steady = steady_state(r, args, end)
    env["loadavg_end"] = _loadavg()
    env["malloc_env"] = {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")}
    figures = headline(results, args, env) if results else dict(env)
    figures.update(steady_headline(steady, args))
    if results:
        print(table(results, args, env))
    print(steady_table(steady, args, env))
    if args.json:
        print(json.dumps(figures, sort_keys=True))
    return figures


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop Redis, delete keys
    main()
