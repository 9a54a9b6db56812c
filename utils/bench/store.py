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
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for _path in (ROOT, Path(__file__).resolve().parent):  # skyline; store_timing, store_steady
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import msgpack  # noqa: E402
import numpy as np  # noqa: E402
import redis  # noqa: E402
from redis.backoff import NoBackoff  # noqa: E402
from redis.retry import Retry  # noqa: E402
from store_steady import steady_headline, steady_state, steady_table  # noqa: E402
from store_timing import (  # noqa: E402
    CHUNK,
    DECODE_SAMPLE,
    NO_RATE,
    PREFIX,
    STEP,
    TARGET_READ,
    Clock,
    Rate,
    _num,
    best_of,
    cycle_chunks,
    delete_prefix,
    make_series,
    metric_name,
    series_key,
)

from skyline.store import raw as redis_raw  # noqa: E402
from skyline.store.connection import EmbeddedRedis  # noqa: E402
from skyline.store.keys import RedisKeys  # noqa: E402
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

APPEND_BATCH = 5000  # datapoints per pipeline round trip
REPS = 3
FORMATS = ("records", "msgpack")


# Data ---------------------------------------------------------------------------------


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
