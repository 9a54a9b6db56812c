#!/usr/bin/env python
"""Webapp benchmark: every list page at 100,000 anomalies and 100,000 metrics.

Fills a fresh SQLite database (migrated by ``skyline.db.migrate.upgrade``) and an
embedded Redis through the project's own code: ``--metrics`` series of ``--points``
points each (``TimeSeriesStore.append_grouped``; dotted names in 100 namespaces of
20 services, plus 70 ``skyline.*`` self-metrics), ``--anomalies`` anomalies spread
over the last 7 days (the panorama's ``Anomaly`` rows, ids from ``AnomalyEvent``),
one alert delivery in 50 and one label in 100.  Then serves the real app
(``create_app``) on a threaded werkzeug server on a free port, logs in through the
form, and times each page over HTTP: the median of ``--reps`` requests (after one
warm-up), in milliseconds.  Prints a table; ``--json`` adds a last line
``{"pages": {PAGE: ms}, "slowest_ms": ..., "anomalies": ..., "metrics": ...}``.

    python utils/bench/webapp.py [--metrics 100000] [--anomalies 100000]
                                 [--points 60] [--reps 5] [--json]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import requests  # noqa: E402
from sqlalchemy import insert, select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from skyline.db import make_engine  # noqa: E402
from skyline.db.migrate import upgrade  # noqa: E402
from skyline.db.models import AlertLog, Anomaly, Label, Metric  # noqa: E402
from skyline.events.anomaly import AnomalyEvent  # noqa: E402
from skyline.settings import load_settings  # noqa: E402
from skyline.store.connection import connect, embedded  # noqa: E402
from skyline.webapp import users  # noqa: E402
from skyline.webapp.app import create_app  # noqa: E402
from skyline.webapp.context import make_context  # noqa: E402

PASSWORD = "bench password 1"
BATCH = 5000


def name_of(i: int) -> str:
    return f"host{i % 100:03d}.svc{(i // 100) % 20:02d}.metric{i}"


def fill_store(ctx, n_metrics: int, n_points: int, now: int) -> list[str]:
    ts = (now - 60 * np.arange(n_points)[::-1]).tolist()
    rng = np.random.default_rng(1)
    names = [name_of(i) for i in range(n_metrics)]
    names += [f"skyline.{d}.bench.counter{j}" for d in ("horizon", "analyzer", "panorama",
                                                          "alerters", "webapp") for j in range(14)]  # fmt: skip
    for i in range(0, len(names), 2000):
        chunk = names[i : i + 2000]
        values = rng.normal(50, 5, (len(chunk), n_points))
        ctx.store.append_grouped({n: (ts, v.tolist()) for n, v in zip(chunk, values, strict=True)})
    return names


def fill_db(engine, names: list[str], n_anomalies: int, now: int) -> None:
    rng = np.random.default_rng(2)
    with Session(engine) as db:
        db.execute(insert(Metric), [{"name": n} for n in names])
        db.commit()
        ids = {name: i for name, i in db.execute(select(Metric.name, Metric.id))}
    # a skewed choice: a few metrics have many anomalies, most have none or one
    picks = (rng.pareto(1.2, n_anomalies) * 50).astype(int) % len(names)
    # distinct times over the last 7 days (an event id is per metric and time)
    stamps = now - 60 - rng.permutation(n_anomalies) * (7 * 86400 // n_anomalies)
    for start in range(0, n_anomalies, BATCH):
        rows, alerts, labels = [], [], []
        for k in range(start, min(start + BATCH, n_anomalies)):
            e = AnomalyEvent(metric=names[picks[k]], timestamp=int(stamps[k]),
                             value=float(900 + k % 7), source="analyzer",
                             algorithms_run=("grubbs", "ks_test", "histogram_bins"),
                             triggered=("grubbs", "ks_test"), scores={"grubbs": 4.1, "ks_test": 3.2})  # fmt: skip
            rows.append({"event_id": e.id, "metric_id": ids[e.metric], "timestamp": e.timestamp,
                         "value": e.value, "full_duration": e.full_duration, "source": e.source,
                         "host": "bench", "algorithms_run": list(e.algorithms_run),
                         "triggered_algorithms": list(e.triggered), "scores": e.scores,
                         "verdict": ("anomalous", "alerted", "not_anomalous", "expired")[k % 4]})  # fmt: skip
        with Session(engine) as db:
            db.execute(insert(Anomaly), rows)
            got = db.execute(select(Anomaly.id, Anomaly.event_id, Anomaly.metric_id, Anomaly.timestamp)
                             .where(Anomaly.event_id.in_([r["event_id"] for r in rows]))).all()  # fmt: skip
            for j, (aid, eid, mid, ts) in enumerate(got):
                if j % 50 == 0:
                    alerts.append({"event_id": eid, "anomaly_id": aid, "metric_id": mid, "channel": "slack",
                                   "rule_pattern": "*", "status": "sent", "delivered_at": ts + 5})  # fmt: skip
                if j % 100 == 0:
                    labels.append({"anomaly_id": aid, "label": "true_positive", "user_id": None})
            db.execute(insert(AlertLog), alerts)
            db.execute(insert(Label), labels)
            db.commit()


def pages(names: list[str], newest_id: int, n_anomalies: int, cursor: str) -> dict[str, str]:
    """The pages timed; "middle" pages are half way through the list (50 a page)."""
    busy = name_of(0)
    mid = max(1, n_anomalies // 100)
    search_mid = max(1, len(names) // 2000)  # svc07 is 1 in 20 names
    return {
        "now": "/now",
        "anomalies": "/anomalies",
        "anomalies middle page (offset)": f"/anomalies?page={mid}",
        "anomalies middle page (keyset)": f"/anomalies?page={mid}&before={cursor}",
        "anomalies metric filter": f"/anomalies?metric={busy}",
        "anomalies verdict filter, page 100 (offset)": "/anomalies?verdict=alerted&page=100",
        "anomalies label filter": "/anomalies?label=true_positive",
        "anomaly detail": f"/anomaly/{newest_id}",
        "metrics tree root": "/metrics",
        "metrics tree host007.": "/metrics?prefix=host007.",
        "metrics tree host007.svc03.": "/metrics?prefix=host007.svc03.",
        "metrics search": "/metrics?q=svc07.metric1",
        "metrics search middle page": f"/metrics?q=svc07&page={search_mid}",
        "metric graph page": f"/metrics?name={busy}",
        "ranking 6h by rate": "/ranking",
        "ranking 7d by rate": "/ranking?from=7d",
        "ranking 7d by count": "/ranking?from=7d&by=count",
        "api anomalies": "/api/v1/anomalies",
        "api anomalies middle page (offset)": f"/api/v1/anomalies?page={mid}",
        "api anomalies middle page (keyset)": f"/api/v1/anomalies?page={mid}&before={cursor}",
        "api metrics": "/api/v1/metrics",
        "api metrics search": "/api/v1/metrics?q=svc07",
        "api metric series + marks": f"/api/v1/metrics/{busy}?marks=1",
        "api ranking 7d": "/api/v1/ranking?from=7d",
    }


def login(base: str) -> requests.Session:
    s = requests.Session()
    token = re.search(r'name="csrf_token" value="([^"]+)"', s.get(base + "/login").text)
    assert token is not None
    r = s.post(base + "/login", data={"username": "admin", "password": PASSWORD,
                                      "csrf_token": token.group(1)}, allow_redirects=False)  # fmt: skip
    if r.status_code != 302:
        raise SystemExit(f"login failed: HTTP {r.status_code}")
    return s


def time_pages(base: str, paths: dict[str, str], reps: int) -> dict[str, float]:
    s = login(base)
    out = {}
    for label, path in paths.items():
        r = s.get(base + path)
        if r.status_code != 200:
            raise SystemExit(f"{label}: {path} answered HTTP {r.status_code}: {r.text[:300]}")
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            s.get(base + path).raise_for_status()
            times.append(time.perf_counter() - t0)
        out[label] = round(statistics.median(times) * 1000, 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--metrics", type=int, default=100_000)
    ap.add_argument("--anomalies", type=int, default=100_000)
    ap.add_argument("--points", type=int, default=60)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request
    now = int(time.time())
    with tempfile.TemporaryDirectory() as tmp:
        env = {"SKYLINE__SKYLINE__VAR_DIR": tmp, "SKYLINE__WEBAPP__ADMIN_PASSWORD": PASSWORD}
        settings = load_settings(None, env)
        upgrade(settings.database_url)
        client = connect(settings)
        ctx = make_context(settings, client=client, engine=make_engine(settings.database_url))
        t0 = time.perf_counter()
        names = fill_store(ctx, args.metrics, args.points, now)
        fill_db(ctx.engine, names, args.anomalies, now)
        fill_s = time.perf_counter() - t0
        users.add_user(ctx.engine, "admin", PASSWORD, "admin")
        with Session(ctx.engine) as db:
            newest = db.scalar(select(Anomaly.id).order_by(Anomaly.id.desc()).limit(1)) or 1
            newest_first = select(Anomaly.timestamp, Anomaly.id).order_by(
                Anomaly.timestamp.desc(), Anomaly.id.desc()
            )
            mid = max(1, args.anomalies // 100)  # the cursor ending the page before it
            ts, aid = db.execute(newest_first.offset((mid - 1) * 50 - 1).limit(1)).one()
        server = make_server("127.0.0.1", 0, create_app(ctx), threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            result = time_pages(f"http://127.0.0.1:{server.server_port}", pages(names, newest, args.anomalies, f"{ts}:{aid}"),
                                args.reps)  # fmt: skip
        finally:
            server.shutdown()
            embedded(settings).stop()
    print(
        f"{args.anomalies} anomalies, {len(names)} metrics ({args.points} points each); "
        f"filled in {fill_s:.0f} s; median of {args.reps} requests"
    )
    print(f"{'page':32} {'ms':>8}")
    for label, ms in result.items():
        print(f"{label:32} {ms:8.1f}{'  OVER 300 ms' if ms > 300 else ''}")
    if args.json:
        print(json.dumps({"pages": result, "slowest_ms": max(result.values()),
                          "anomalies": args.anomalies, "metrics": len(names)}))  # fmt: skip


if __name__ == "__main__":
    main()
