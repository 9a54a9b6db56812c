"""Analyzer latency: from a datapoint stored to its anomaly event on the stream.

Starts a real analyzer daemon (``skyline start analyzer``) on a scratch directory
with its own embedded Redis, seeds ``--metrics`` series of a day at 60 s, then for
``--seconds`` writes one new point per metric per minute, spread evenly, exactly as
horizon does (``append_batch(..., changed=True)``).  About one write in
``--spike-every`` is a large spike.  A reader blocked on the anomalies stream takes
each event's arrival time; latency is arrival minus the moment the spike's write
returned.  Reports p50/p99/max and how many spikes were not flagged.

    python utils/bench/analyzer_latency.py [--metrics 10000] [--seconds 120] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import redis

from skyline.analysis.analyzer.agent import SWEEP_SLICE
from skyline.events.anomaly import AnomalyEvent
from skyline.store.keys import RedisKeys
from skyline.store.timeseries import TimeSeriesStore

STEP = 60


def seed(store: TimeSeriesStore, metrics: list[str], now: int, rng: np.random.Generator) -> None:
    ts = (now - STEP - STEP * np.arange(1440)[::-1]).tolist()
    for i in range(0, len(metrics), 500):
        store.append_grouped(
            {m: (ts, (100 + rng.normal(0, 1, 1440)).tolist()) for m in metrics[i : i + 500]}
        )


def watch(client: redis.Redis, stream: str, arrivals: dict, stop: threading.Event) -> None:
    last = "$"
    while not stop.is_set():
        reply = client.xread({stream: last}, block=200, count=1000)
        now = time.monotonic()
        for _, entries in reply or []:
            for entry_id, fields in entries:
                last = entry_id
                e = AnomalyEvent.from_fields(fields)
                arrivals.setdefault((e.metric, e.timestamp), now)


def feed(store: TimeSeriesStore, metrics: list[str], seconds: float, spike_every: int,
         rng: np.random.Generator) -> dict:  # fmt: skip
    """One point per metric per minute, in 1-second slices; returns spike write times."""
    written: dict[tuple[str, int], float] = {}
    per_second = max(1, len(metrics) // STEP)
    names = list(metrics)
    start = time.monotonic()
    k = 0
    while time.monotonic() - start < seconds:
        tick = time.monotonic()
        now = int(time.time())
        batch = [names[(k + j) % len(names)] for j in range(per_second)]
        k += per_second
        values = 100 + rng.normal(0, 1, len(batch))
        spikes = rng.random(len(batch)) < 1 / spike_every
        values[spikes] = 10_000.0
        store.append_batch(
            list(range(len(batch))), [now] * len(batch), values.tolist(), batch, changed=True
        )
        done = time.monotonic()
        for name in np.array(batch)[spikes]:
            written[(str(name), now)] = done
        time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
    return written


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--metrics", type=int, default=10_000)
    p.add_argument("--seconds", type=float, default=120.0)
    p.add_argument("--spike-every", type=int, default=200)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="skyline-bench-latency-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKYLINE")}
    env["SKYLINE__REDIS__EMBEDDED_PERSIST"] = "false"
    cli = [sys.executable, "-m", "skyline.cli.main"]
    try:
        subprocess.run(
            cli + ["db", "upgrade"], cwd=workdir, env=env, check=True, capture_output=True
        )
        rng = np.random.default_rng(42)
        from skyline.store.connection import EmbeddedRedis

        server = EmbeddedRedis(workdir / "var", persist=False)
        server.start()
        client = redis.Redis.from_url(server.url)
        keys = RedisKeys()
        store = TimeSeriesStore(client, keys)
        metrics = [f"bench.latency.m{i}" for i in range(args.metrics)]
        seed(store, metrics, int(time.time()), rng)
        subprocess.run(cli + ["start", "analyzer"], cwd=workdir, env=env, check=True)
        while not _swept(client, keys, len(metrics) // SWEEP_SLICE + 2):
            time.sleep(0.2)  # the start-up sweep over every metric is over
        arrivals: dict = {}
        stop = threading.Event()
        watcher = threading.Thread(
            target=watch, args=(client, keys.anomalies_stream(), arrivals, stop)
        )
        watcher.start()
        written = feed(store, metrics, args.seconds, args.spike_every, rng)
        time.sleep(3)
        stop.set()
        watcher.join()
        lat = np.array([arrivals[k] - t for k, t in written.items() if k in arrivals])
        result = {
            "metrics": args.metrics,
            "points_per_s": args.metrics / STEP,
            "spikes_written": len(written),
            "spikes_detected": int(len(lat)),
            "latency_p50_s": round(float(np.percentile(lat, 50)), 4) if len(lat) else None,
            "latency_p99_s": round(float(np.percentile(lat, 99)), 4) if len(lat) else None,
            "latency_max_s": round(float(lat.max()), 4) if len(lat) else None,
        }
    finally:
        subprocess.run(cli + ["stop", "all"], cwd=workdir, env=env, capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(result) if args.json else "\n".join(f"{k:18} {v}" for k, v in result.items()))
    return result


def _swept(client: redis.Redis, keys: RedisKeys, runs: int) -> bool:
    beat = client.get(keys.heartbeat("analyzer"))
    return bool(beat and json.loads(beat)["runs"] >= runs)


if __name__ == "__main__":
    main()
