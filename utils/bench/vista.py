#!/usr/bin/env python
"""vista pull throughput: SQL points per second, and how long refreshing 10,000
Prometheus-API series takes.

* ``sql``: a SQLite table (``--sql-url`` names another database, e.g. PostgreSQL)
  holding ``--rows`` rows over ``--sql-metrics`` names, minutely, the last day; one
  first pull of the source (every row new) through vista's own ``pull`` -- query,
  cursor filter, the store's append -- timed; points/s = points stored / time.
* ``prometheus``: a VictoriaMetrics server (Debian's ``victoria-metrics``, started in a
  temp dir; it answers Prometheus' ``query_range``) holding ``--series`` series of the
  last hour, minutely; one ``query_range`` pull of them all (the first, an hour per
  series) and then a steady pass (the last two minutes plus the overlap), timed.

One process; Redis: an embedded server in a temp dir, or ``--redis-url`` (DB 12, flushed).

    python utils/bench/vista.py [--rows 1000000] [--sql-metrics 100] [--sql-url URL]
        [--series 10000] [--redis-url URL] [--json]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import redis  # noqa: E402
import requests  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from benchkit import with_redis  # noqa: E402

from skyline.ingest.vista.pull import pull  # noqa: E402
from skyline.ingest.vista.sources import build  # noqa: E402
from skyline.settings import load_settings  # noqa: E402
from skyline.settings.vista import VistaSource  # noqa: E402
from skyline.store.keys import RedisKeys  # noqa: E402
from skyline.store.timeseries import TimeSeriesStore  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_sql(client: redis.Redis, url: str, rows: int, metrics: int) -> dict:
    now = int(time.time()) // 60 * 60
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    table = sa.Table("vista_bench", meta, sa.Column("ts", sa.Integer), sa.Column("name", sa.String(64)),
                     sa.Column("value", sa.Float))  # fmt: skip
    meta.drop_all(engine)
    meta.create_all(engine)
    per = rows // metrics
    with engine.begin() as conn:
        for m in range(metrics):
            conn.execute(table.insert(), [
                {"ts": now - 60 * i if per <= 1440 else now - int(86000 * i / per), "name": f"m{m}",
                 "value": float(i % 97)} for i in range(per)
            ])  # fmt: skip
    cfg = VistaSource(name="bench", kind="sql", url=url, max_points=rows + 1, timeout=600.0,
                      backfill_days=1.0, options={"time_type": "epoch"},
                      query="SELECT ts, name, value FROM vista_bench WHERE ts > :start AND ts <= :end")  # fmt: skip
    settings = load_settings(env={"SKYLINE__SKYLINE__VAR_DIR": tempfile.gettempdir()})
    client.flushdb()
    store = TimeSeriesStore(client, RedisKeys(settings.redis.prefix))
    source = build(cfg)
    t0 = time.perf_counter()
    r = pull(source, store, client, settings, float(now + 1))
    took = time.perf_counter() - t0
    source.close()
    meta.drop_all(engine)
    engine.dispose()
    stored = r.delivered.live + r.delivered.rolled
    return {"rows": per * metrics, "stored": stored, "seconds": round(took, 3),
            "points_per_s": round(stored / took)}  # fmt: skip


def bench_prometheus(client: redis.Redis, series: int) -> dict:
    vm = shutil.which("victoria-metrics")
    if vm is None:
        return {"skipped": "victoria-metrics is not installed"}
    now = int(time.time()) // 60 * 60
    with tempfile.TemporaryDirectory() as tmp:
        port = _free_port()
        proc = subprocess.Popen([vm, f"-storageDataPath={tmp}/data", f"-httpListenAddr=127.0.0.1:{port}",
                                 "-search.latencyOffset=0s", "-search.maxUniqueTimeseries=1000000"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(200):
                try:
                    requests.get(base + "/health", timeout=1)
                    break
                except requests.RequestException:
                    time.sleep(0.1)
            lines = [f'bench_load{{host="h{s}"}} {(s + i) % 13} {(now - 60 * i) * 1000}'
                     for s in range(series) for i in range(61)]  # fmt: skip
            for i in range(0, len(lines), 100000):
                requests.post(base + "/api/v1/import/prometheus", data="\n".join(lines[i:i + 100000]),
                              timeout=120).raise_for_status()  # fmt: skip
            requests.get(base + "/internal/force_flush", timeout=60)
            time.sleep(2)
            cfg = VistaSource(name="prom", kind="victoriametrics", url=base, query="bench_load",
                              step=60, backfill_days=3600 / 86400, timeout=120.0, max_points=10**7)  # fmt: skip
            settings = load_settings(env={"SKYLINE__SKYLINE__VAR_DIR": tmp})
            client.flushdb()
            store = TimeSeriesStore(client, RedisKeys(settings.redis.prefix))
            source = build(cfg)
            t0 = time.perf_counter()
            first = pull(source, store, client, settings, float(now))
            t_first = time.perf_counter() - t0
            requests.post(base + "/api/v1/import/prometheus", timeout=120, data="\n".join(
                f'bench_load{{host="h{s}"}} 1 {(now + 60) * 1000}' for s in range(series)))  # fmt: skip
            requests.get(base + "/internal/force_flush", timeout=60)
            time.sleep(2)
            t0 = time.perf_counter()
            steady = pull(source, store, client, settings, float(now + 60))
            t_steady = time.perf_counter() - t0
            source.close()
        finally:
            proc.terminate()
            proc.wait(30)
    return {"series": first.metrics, "first_pull_points": first.delivered.live,
            "first_pull_s": round(t_first, 3), "steady_pull_series": steady.metrics,
            "steady_pull_new_points": steady.new, "steady_pull_s": round(t_steady, 3)}  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--sql-metrics", type=int, default=100)
    p.add_argument("--sql-url", default="")
    p.add_argument("--series", type=int, default=10_000)
    p.add_argument("--redis-url")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()

    def run(client: redis.Redis) -> dict:
        with tempfile.TemporaryDirectory() as tmp:
            url = args.sql_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
            return {"sql": bench_sql(client, url, args.rows, args.sql_metrics),
                    "prometheus": bench_prometheus(client, args.series)}  # fmt: skip

    out = with_redis(args.redis_url, run)
    print(json.dumps(out) if args.json else json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
