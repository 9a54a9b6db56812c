#!/usr/bin/env python
"""Luminosity benchmark: one anomaly correlated against every metric in the store.

Seeded synthetic metrics (numpy ``default_rng``): ``--metrics`` series of ``--points``
points at a ``--step`` s resolution (default 60: a day is 1,440 points; at 10 s a day
is 8,640) (random walks, noise and sine waves; 1 % of them follow the anomaly's
metric, so some correlations are found), written to a Redis in the store's format.
Timed, best of ``--reps``:

* ``read``: what luminosity reads, ``read_lookback`` of every metric (the tails that
  cover the window and its lookback: ``tail_records`` records each, one GETRANGE
  each), a chunk at a time;
* ``read_whole``: ``TimeSeriesStore.read_many`` of every metric (MGET + decode of each
  whole series), what luminosity read before, for comparison;
* ``correlate_only``: resampling + cross-correlation of the windows already in memory;
* ``total``: ``skyline.analysis.luminosity.agent.correlate_anomaly`` — read + correlate, what
  the daemon does per anomaly (SQL writes, at most ``max_correlations`` rows, excluded).

One process, one thread (``OPENBLAS_NUM_THREADS=1``).  Redis: an embedded server in a
temp dir, or ``--redis-url`` (only DB 12 of it is used and flushed).

    python utils/bench/luminosity.py [--metrics 10000] [--points 1440] [--step 60]
                                     [--reps 3] [--redis-url URL] [--json]
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

from skyline.analysis.luminosity.agent import (  # noqa: E402
    READ_CHUNK,
    correlate_anomaly,
    read_lookback,
    tail_records,
)
from skyline.analysis.luminosity.correlate import (  # noqa: E402
    Params,
    correlate_window,
    lookback_start,
    window_of,
)
from skyline.store.keys import RedisKeys  # noqa: E402
from skyline.store.timeseries import TimeSeriesStore  # noqa: E402

NOW = 1_700_000_000
ANCHOR = "bench.anchor"


def synthetic(m: int, n: int, seed: int = 42) -> np.ndarray:
    """(m, n) values; row 0 is the anomaly's metric, 1 % of rows follow it."""
    rng = np.random.default_rng(seed)
    v = np.cumsum(rng.normal(0, 1, (m, n)), axis=1) + 100
    v[1::3] = rng.normal(50, 5, v[1::3].shape)
    v[2::3] += 10 * np.sin(np.arange(n) / rng.uniform(5, 50, (len(v[2::3]), 1)))
    v[0, -5:] += [10, 20, 40, 60, 90]
    followers = rng.choice(np.arange(1, m), max(1, m // 100), replace=False)
    v[followers] = 2 * v[0] + rng.normal(0, 0.5, (len(followers), n))
    return v


def time_correlate(store: TimeSeriesStore, others: list[str], params: Params, reps: int) -> float:
    """Resampling + cross-correlation alone, on the tails already read."""
    anchor = store.read(ANCHOR)
    window = window_of((anchor.timestamps, anchor.values), NOW, params)
    assert window is not None
    series = read_lookback(store, others, window[0], int(anchor.timestamps[-1]))
    loaded = [(k, s.timestamps, s.values) for k, s in series.items()]
    return best(lambda: correlate_window(window, loaded, params), reps)


def read_all(store: TimeSeriesStore, others: list[str], params: Params) -> int:
    """What correlate_anomaly reads of ``others``: their tails, a chunk at a time;
    returns the records asked per metric."""
    anchor = store.read(ANCHOR)
    window = window_of((anchor.timestamps, anchor.values), NOW, params)
    assert window is not None
    newest = int(anchor.timestamps[-1])
    for i in range(0, len(others), READ_CHUNK):
        read_lookback(store, others[i : i + READ_CHUNK], window[0], newest)
    step = (int(window[0][-1]) - int(window[0][0])) / (len(window[0]) - 1)
    return tail_records(newest - lookback_start(window[0]), step)


def bench(client: redis.Redis, m: int, n: int, step: int, reps: int) -> dict[str, float]:
    client.flushdb()
    store = TimeSeriesStore(client, RedisKeys("skybench:"))
    t = (NOW - step * np.arange(n - 1, -1, -1)).astype(float).tolist()
    v = synthetic(m, n)
    names = [ANCHOR] + [f"bench.metric.{i}" for i in range(1, m)]
    for start in range(0, m, 500):
        store.append_grouped(
            {names[i]: (t, v[i].tolist()) for i in range(start, min(start + 500, m))}
        )
    del v
    params = Params()
    others = names[1:]
    read = best(lambda: read_all(store, others, params), reps)
    records = read_all(store, others, params)
    read_whole = best(lambda: store.read_many(others), reps)
    corr = time_correlate(store, others, params, reps)
    total = best(lambda: correlate_anomaly(store, ANCHOR, NOW, others, params), reps)
    outcome = correlate_anomaly(store, ANCHOR, NOW, others, params)
    assert outcome is not None
    client.flushdb()
    return {
        "step_s": step,
        "tail_records": records,
        "read_s": read,
        "read_whole_s": read_whole,
        "correlate_only_s": corr,
        "total_s": total,
        "anomalies_per_s": 1 / total,
        "metrics_per_s": (m - 1) / total,
        "correlate_only_metrics_per_s": (m - 1) / corr,
        "compared": outcome.compared,
        "correlations_kept": len(outcome.correlations),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--metrics", type=int, default=10000)
    p.add_argument("--points", type=int, default=1440)
    p.add_argument("--step", type=int, default=60, help="resolution of every metric, s")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--redis-url", default=None, help="its DB 12 is FLUSHED (default: embedded)")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    out: dict[str, float] = {"metrics": a.metrics, "points": a.points}
    out.update(with_redis(a.redis_url, lambda c: bench(c, a.metrics, a.points, a.step, a.reps)))
    for k, val in out.items():
        print(f"{k:32s} {val:14,.3f}" if isinstance(val, float) else f"{k:32s} {val:14,d}")
    if a.json:
        print(json.dumps({k: round(x, 4) if isinstance(x, float) else x for k, x in out.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
