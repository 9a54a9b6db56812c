#!/usr/bin/env python
"""Rollup benchmark: horizon's rollup pass (skyline.store.rollups) over many metrics.

Writes ``--metrics`` series of ``--points`` minutely points (seeded), then times:

* ``first_pass``: the pass over rollups that do not exist yet (every complete
  10-minute bucket of the day is folded: about 143 per metric);
* ``steady_pass``: after ``--new`` more minutes arrived for every metric, the pass a
  running horizon makes every ``rollup_interval`` (a bucket or none per metric);
* ``idle_pass``: a pass with nothing new to fold;
* ``history_ms``: one mirage read of 168 h at 600 s over a full 30-day rollup;
* ``rollup_bytes``: Redis ``MEMORY USAGE`` of one 30-day rollup (4,320 records),
  and that times ``--metrics``.

Client on one thread, Redis its own process.  With no ``--redis-url`` an embedded
Redis (unix socket, temp dir) is started; with one, only keys under ``skybench:``
are written and they are deleted at the end.

    python utils/bench/rollups.py [--redis-url URL] [--metrics 10000] [--points 1440]
                                  [--new 10] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import redis  # noqa: E402

from skyline.store.connection import EmbeddedRedis  # noqa: E402
from skyline.store.keys import RedisKeys  # noqa: E402
from skyline.store.rollups import Rollups, encode  # noqa: E402
from skyline.store.timeseries import TimeSeriesStore  # noqa: E402

PREFIX = "skybench:"
RES = 600
DAY = 86400


def fill(store: TimeSeriesStore, names: list[str], points: int, end: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    ts = end - 60 * np.arange(points)[::-1]
    for i in range(0, len(names), 500):
        chunk = names[i : i + 500]
        ids = np.repeat(np.arange(len(chunk)), points)
        values = rng.normal(100, 10, len(ids))
        store.append_batch(ids, np.tile(ts, len(chunk)), values, chunk)


def timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def run(client: redis.Redis, args: argparse.Namespace) -> dict[str, float]:
    keys = RedisKeys(PREFIX)
    store = TimeSeriesStore(client, keys)
    rollups = Rollups(store, RES)
    names = [f"bench.rollups.metric_{i:05d}" for i in range(args.metrics)]
    end = int(time.time()) // 60 * 60
    fill(store, names, args.points, end, args.seed)

    def pass_at(now: int):
        return rollups.roll_up(names, now=now, retention=30 * DAY, lag=60)

    first, out1 = timed(lambda: pass_at(end))
    newer = end + 60 * np.arange(1, args.new + 1)
    ids = np.repeat(np.arange(len(names)), len(newer))
    store.append_batch(ids, np.tile(newer, len(names)), np.full(len(ids), 100.0), names)
    steady, out2 = timed(lambda: pass_at(int(newer[-1])))
    idle, out3 = timed(lambda: pass_at(int(newer[-1])))
    # one full 30-day rollup for the history read and the memory figure
    starts = (end // RES * RES - RES * np.arange(30 * 144)[::-1]).astype(np.int64)
    client.set(rollups.key(names[0]), encode(starts, np.full(len(starts), 1.0)))
    reps = 50
    hist, _ = timed(lambda: [rollups.history(names[0], end - 168 * 3600, end) for _ in range(reps)])
    size = int(client.memory_usage(rollups.key(names[0])) or 0)
    return {
        "metrics": args.metrics,
        "points": args.points,
        "first_pass_s": round(first, 3),
        "first_pass_buckets": int(out1.get("buckets_written", 0)),  # type: ignore[union-attr]
        "steady_pass_s": round(steady, 3),
        "steady_pass_buckets": int(out2.get("buckets_written", 0)),  # type: ignore[union-attr]
        "idle_pass_s": round(idle, 3),
        "idle_pass_buckets": int(out3.get("buckets_written", 0)),  # type: ignore[union-attr]
        "history_ms": round(1000 * hist / reps, 3),
        "rollup_bytes_30d": size,
        "rollup_mb_30d_all_metrics": round(size * args.metrics / 1e6, 1),
    }


def cleanup(client: redis.Redis) -> None:
    batch = []
    for key in client.scan_iter(match=f"{PREFIX}*", count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            client.delete(*batch)
            batch = []
    if batch:
        client.delete(*batch)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--redis-url", help="use this Redis (e.g. redis://127.0.0.1:6379/14)")
    p.add_argument("--metrics", type=int, default=10_000)
    p.add_argument("--points", type=int, default=1440)
    p.add_argument("--new", type=int, default=10, help="minutes arriving before the steady pass")
    p.add_argument("--seed", type=int, default=20261123)
    p.add_argument("--json", action="store_true", help="end with one line of JSON figures")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    server = None
    if args.redis_url:
        url = args.redis_url
    else:
        server = EmbeddedRedis(Path(tempfile.mkdtemp(prefix="skybench-")), persist=False)
        server.start()
        url = server.url
    client = redis.Redis.from_url(url)
    try:
        figures = run(client, args)
    finally:
        cleanup(client)
        client.close()
        if server is not None:
            server.stop()
    for k, v in figures.items():
        print(f"{k:28s} {v}")
    if args.json:
        print(json.dumps(figures, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
