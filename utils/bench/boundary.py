#!/usr/bin/env python
"""Boundary benchmark: the daemon's run over many watched metrics.

Writes ``--metrics`` series of ``--points`` minutely points (seeded) matched by two
``[[boundary]]`` rules each (greater_than and detect_drop_off_cliff), then times the
daemon's ``run_once``:

* ``first_run_s``: the first run (match the names, read every series whole, judge
  each metric's newest point);
* ``idle_run_s``: a run with no new data (one read of the appended bytes per metric);
* ``new_point_run_s``: a run after one new point arrived for every metric
  (``2 x --metrics`` judgements), and the judgements per second that makes.

Client on one thread, Redis its own process.  With no ``--redis-url`` an embedded
Redis (unix socket, temp dir) is started; with one, its DB is flushed: give it a
spare DB index (e.g. redis://127.0.0.1:6379/15).

    python utils/bench/boundary.py [--redis-url URL] [--metrics 1000] [--points 120] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import redis  # noqa: E402

from skyline.analysis.boundary.agent import Boundary  # noqa: E402
from skyline.settings import load_settings  # noqa: E402
from skyline.store.connection import EmbeddedRedis  # noqa: E402

RULES = """
[[boundary]]
pattern = "bench.boundary"
algorithm = "greater_than"
limit = 1000.0
channels = ["slack"]

[[boundary]]
pattern = "bench.boundary"
algorithm = "detect_drop_off_cliff"
channels = ["slack"]
"""


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run(url: str, metrics: int, points: int, tmp: Path) -> dict[str, float]:
    redis.Redis.from_url(url).flushdb()
    conf = tmp / "skyline.conf"
    conf.write_text(RULES)
    settings = load_settings(conf, env={"SKYLINE__REDIS__URL": url,
                                        "SKYLINE__SKYLINE__VAR_DIR": str(tmp / "var")})  # fmt: skip
    daemon = Boundary(settings)
    daemon.setup()
    names = [f"bench.boundary.m{i}" for i in range(metrics)]
    end = int(time.time()) - 60
    ts = end - 60 * np.arange(points)[::-1]
    rng = np.random.default_rng(7)
    for i in range(0, metrics, 500):
        chunk = names[i : i + 500]
        daemon.store.append_grouped(
            {n: (ts.tolist(), rng.normal(100, 5, points).tolist()) for n in chunk}
        )
    first = timed(daemon.run_once)
    idle = timed(daemon.run_once)
    daemon.store.append_grouped({n: ([float(end + 60)], [100.0]) for n in names})
    new = timed(daemon.run_once)
    judged = 2 * metrics
    return {
        "metrics": metrics,
        "watched": len(daemon.watched),
        "first_run_s": round(first, 3),
        "idle_run_s": round(idle, 3),
        "new_point_run_s": round(new, 3),
        "judgements_per_s": round(judged / new),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--redis-url", default="")
    ap.add_argument("--metrics", type=int, default=1000)
    ap.add_argument("--points", type=int, default=120)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        server = None
        url = args.redis_url
        if not url:
            server = EmbeddedRedis(tmp / "redis", persist=False)
            server.start()
            url = server.url
        try:
            out = run(url, args.metrics, args.points, tmp)
        finally:
            if server:
                server.stop()
    if not args.json:
        for k, v in out.items():
            print(f"{k:>18}: {v}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
