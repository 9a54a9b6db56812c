#!/usr/bin/env python
"""Analyzer benchmark: the three-sigma ensemble per series and in batch.

Seeded synthetic metrics (numpy ``default_rng``): white noise, daily
seasonality, linear trends, Poisson counters and random walks, ~1 % with a spike
injected in the last points; ``--points`` points each (default 1,440 at a 60 s
step, the last one at ``now`` minus a per-metric jitter).

Reported, for ``mode`` classic and default:

* ``per_series``: ``run_ensemble`` on each series (metrics/s);
* ``batch``: ``run_ensemble_batch`` on the 2-D arrays (metrics/s), and the ratio;
* ``end_to_end`` (default mode): ``TimeSeriesStore.read_raw_many`` + ``to_series``
  + stacking + ``run_ensemble_batch`` from a Redis holding the same metrics.

One process, one thread (``OPENBLAS_NUM_THREADS=1`` is set).  Figures are the best
of ``--reps`` repetitions.  Redis: an embedded server in a temp dir, or
``--redis-url`` (only DB 12 of it is used and flushed).

    python utils/bench/analyzer.py [--metrics N] [--points 1440] [--redis-url URL]
                                   [--reps 3] [--json]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import redis  # noqa: E402
from benchkit import best, with_redis  # noqa: E402

from skyline.algorithms import run_ensemble, run_ensemble_batch  # noqa: E402
from skyline.redis_keys import RedisKeys  # noqa: E402
from skyline.timeseries import TimeSeriesStore, to_series  # noqa: E402

NOW = 1_700_000_000
STEP = 60
SHAPES = ("noise", "seasonal", "trend", "counter", "walk")


def synthetic(m: int, n: int, seed: int = 42, spike_rate: float = 0.01):
    """Timestamps (m, n) int64 and values (m, n) float64 of seeded synthetic metrics."""
    rng = np.random.default_rng(seed)
    jitter = rng.integers(0, STEP, m)
    t = (NOW - jitter)[:, None] - STEP * np.arange(n - 1, -1, -1)[None, :]
    phase = rng.uniform(0, 2 * np.pi, (m, 1))
    level = rng.lognormal(3, 2, (m, 1))
    sd = level * rng.uniform(0.01, 0.2, (m, 1))
    v = level + sd * rng.standard_normal((m, n))
    shape = rng.integers(0, len(SHAPES), m)
    season = np.sin(2 * np.pi * t / 86400 + phase) * level * 0.5
    v = np.where((shape == 1)[:, None], v + season, v)
    trend = np.linspace(0, 1, n)[None, :] * level * rng.uniform(-1, 1, (m, 1))
    v = np.where((shape == 2)[:, None], v + trend, v)
    counts = rng.poisson(np.minimum(level, 1e6), (m, n)).astype(np.float64)
    v = np.where((shape == 3)[:, None], counts, v)
    walk = level + np.cumsum(sd * rng.standard_normal((m, n)), axis=1)
    v = np.where((shape == 4)[:, None], walk, v)
    spiked = np.flatnonzero(rng.random(m) < spike_rate)
    v[spiked, -3:] += 20 * (sd[spiked] + 1)
    return t.astype(np.int64), v


def bench_algorithms(t, v, reps: int, per_series_n: int) -> dict[str, float]:
    out: dict[str, float] = {}
    m = len(v)
    ps = min(per_series_n, m)
    for mode in ("classic", "default"):
        per = best(
            lambda mode=mode: [run_ensemble((t[i], v[i]), now=NOW, mode=mode) for i in range(ps)],
            reps,
        )
        bat = best(lambda mode=mode: run_ensemble_batch(t, v, now=NOW, mode=mode), reps)
        res = run_ensemble_batch(t, v, now=NOW, mode=mode)
        out[f"{mode}_per_series_metrics_per_s"] = ps / per
        out[f"{mode}_batch_metrics_per_s"] = m / bat
        out[f"{mode}_batch_vs_per_series"] = (m / bat) / (ps / per)
        out[f"{mode}_anomalous"] = int((res.anomalous == 1).sum())
        out[f"{mode}_skipped"] = int(sum(s is not None for s in res.skip))
    return out


def bench_end_to_end(client: redis.Redis, t, v, reps: int) -> dict[str, float]:
    client.flushdb()
    store = TimeSeriesStore(client, RedisKeys("skybench:"))
    names = [f"bench.metric.{i}" for i in range(len(v))]
    for start in range(0, len(names), 500):
        store.append_grouped(
            {
                names[i]: (t[i].tolist(), v[i].tolist())
                for i in range(start, min(start + 500, len(names)))
            }
        )

    def run() -> None:
        series = [to_series(b) for b in store.read_raw_many(names)]
        n = len(series[0])
        assert all(len(s) == n for s in series)
        ts = np.stack([s.timestamps for s in series])
        vs = np.stack([s.values for s in series])
        run_ensemble_batch(ts, vs, now=NOW, mode="default", validate=False)

    read_only = best(lambda: [to_series(b) for b in store.read_raw_many(names)], reps)
    total = best(run, reps)
    client.flushdb()
    return {
        "read_decode_metrics_per_s": len(v) / read_only,
        "end_to_end_metrics_per_s": len(v) / total,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--metrics", type=int, default=20000)
    p.add_argument("--points", type=int, default=1440)
    p.add_argument("--per-series", type=int, default=1000, help="series timed one by one")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--redis-url", default=None, help="e.g. redis://127.0.0.1:6379/12 (DB 12)")
    p.add_argument("--no-redis", action="store_true")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    t, v = synthetic(a.metrics, a.points)
    out: dict[str, float] = {"metrics": a.metrics, "points": a.points}
    out.update(bench_algorithms(t, v, a.reps, a.per_series))
    if not a.no_redis:
        out.update(with_redis(a.redis_url, lambda c: bench_end_to_end(c, t, v, a.reps)))
    out["batch_metrics_per_s"] = out["default_batch_metrics_per_s"]
    out["per_series_metrics_per_s"] = out["default_per_series_metrics_per_s"]
    for k, val in out.items():
        print(f"{k:40s} {val:14,.1f}" if isinstance(val, float) else f"{k:40s} {val:14,d}")
    if a.json:
        print(json.dumps({k: round(x, 3) if isinstance(x, float) else x for k, x in out.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
