"""The store's hot paths on one redis-server and on a Redis Cluster (3 masters, 3 replicas).

Both servers are Debian's redis-server on loopback, started here and stopped at the
end (the cluster by the test suite's launcher, tests/cluster.py).  Measured with the
store's real code (``skyline.store.timeseries``), one client process:

* append: ``append_batch`` of one point for each of ``--metrics`` metrics (with the
  changed set), the ingest path of horizon and flux -- one RESP payload, per node on
  the cluster;
* read_many: whole 1,440-point series, MGET chunks (grouped by slot on the cluster);
* read_since: the analyzer's incremental read of one new point per metric.

Figures are metrics per second, best of ``--reps``.  On a machine with fewer cores than
nodes the cluster's six servers share them, so this shows the client-side cost of
routing, not the capacity a cluster of machines adds.

    python utils/bench/cluster_store.py [--metrics 10000] [--reps 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import redis

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from skyline.store.keys import RedisKeys  # noqa: E402
from skyline.store.timeseries import Cursor, TimeSeriesStore  # noqa: E402
from tests.cluster import RedisClusterNodes  # noqa: E402
from tests.conftest import RedisServer  # noqa: E402

POINTS = 1440


def best(reps: int, run: Callable[[], None]) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return min(times)


def measure(client: redis.Redis, n: int, reps: int) -> dict[str, float]:
    store = TimeSeriesStore(client, RedisKeys("bench:"))
    names = [f"bench.m{i}" for i in range(n)]
    now = 1_800_000_000
    ts = now - 60 * np.arange(POINTS)[::-1]
    ids = np.repeat(np.arange(n), POINTS)
    store.append_batch(ids, np.tile(ts, n), np.ones(n * POINTS), names, changed=True)
    one = np.arange(n)
    tick = iter(range(1, 10_000))

    def append() -> None:
        t = np.full(n, now + 60 * next(tick), dtype=np.float64)
        store.append_batch(one, t, np.ones(n), names, changed=True)

    out = {"append": n / best(reps, append)}
    out["read_many"] = n / best(reps, lambda: store.read_many(names))
    cursors: dict[str, Cursor | None] = {}
    for metric, _, cursor, _ in store.read_since_many(dict.fromkeys(names)):
        cursors[metric] = cursor

    def read_since() -> None:
        append()
        for metric, _, cursor, _ in store.read_since_many(cursors):
            cursors[metric] = cursor

    both = best(reps, read_since)
    out["append_then_read_since"] = n / both
    return {k: round(v) for k, v in out.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--metrics", type=int, default=10_000)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="skyline-cluster-store-") as tmp:
        single = RedisServer(Path(tmp))
        single.start()
        try:
            one = measure(redis.Redis.from_url(single.url), args.metrics, args.reps)
        finally:
            single.stop()
        nodes = RedisClusterNodes(Path(tmp) / "cluster")
        nodes.start()
        try:
            many = measure(nodes.client(), args.metrics, args.reps)  # type: ignore[arg-type]
        finally:
            nodes.stop()
    result = {f"single_{k}_metrics_per_s": v for k, v in one.items()}
    result.update({f"cluster_{k}_metrics_per_s": v for k, v in many.items()})
    for k, v in result.items():
        print(f"{k:48s} {v:>12,}")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
