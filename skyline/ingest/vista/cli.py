"""``skyline vista backfill NAME --days N`` and ``skyline import FILE.csv --metric NAME``.

Both take the route pulled points take (``route.deliver``): the last day into the
live store, in time order, so the analyzer judges every point; older points into the
rollups mirage and ionosphere read.  A backfill asks the source for its whole window
and stores only what the store lacks, then leaves the cursor where it was or later.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import sys
import time
from pathlib import Path

import numpy as np

from skyline.ingest.vista.pull import pull
from skyline.ingest.vista.route import deliver
from skyline.ingest.vista.sources import SourceError, build
from skyline.settings import Settings
from skyline.store.connection import connect
from skyline.store.keys import RedisKeys
from skyline.store.timeseries import TimeSeriesStore

MAX_IMPORT_POINTS = 10_000_000


def register(subparsers: argparse._SubParsersAction) -> None:
    vista = subparsers.add_parser("vista", help="pulled sources: state, backfill")
    sub = vista.add_subparsers(dest="vista_command", required=True)
    bf = sub.add_parser("backfill", help="load a source's history (last day live, older rolled up)")
    bf.add_argument("name", help="the [[vista]] source's name")
    bf.add_argument("--days", type=float, required=True, help="how far back")
    bf.add_argument("--json", action="store_true")
    st = sub.add_parser("status", help="each source's state and last error")
    st.add_argument("--json", action="store_true")
    imp = subparsers.add_parser("import", help="import a CSV of timestamp,value into a metric")
    imp.add_argument("file", help="CSV with columns timestamp (epoch s or ISO 8601) and value")
    imp.add_argument("--metric", required=True)
    imp.add_argument("--json", action="store_true")


def _store(settings: Settings) -> TimeSeriesStore:
    return TimeSeriesStore(connect(settings), RedisKeys(settings.redis.prefix))


def run(args: argparse.Namespace, settings: Settings) -> int:
    store = _store(settings)
    if args.vista_command == "status":
        from skyline.ingest.vista.status import read

        rows = read(store.redis, store.keys)
        if args.json:
            print(json.dumps(rows))
        for r in rows if not args.json else ():
            state = "ok" if r.get("ok") else f"FAILING ({r.get('failures')})"
            print(f"{r['name']:20} {r.get('kind', ''):16} {state:14} {r.get('last_error', '')}")
        return 0
    cfg = next((c for c in settings.vista if c.name == args.name), None)
    if cfg is None:
        known = ", ".join(c.name for c in settings.vista) or "none"
        print(f"skyline: no [[vista]] source {args.name!r}; sources: {known}", file=sys.stderr)
        return 1
    now = time.time()
    try:
        source = build(cfg.model_copy(update={"timeout": max(cfg.timeout, 300.0)}))
        try:
            r = pull(source, store, store.redis, settings, now, since=now - args.days * 86400)
        finally:
            source.close()
    except SourceError as exc:
        print(f"skyline: vista backfill {args.name}: {exc.reason}: {exc}", file=sys.stderr)
        return 1
    out = {"source": args.name, "metrics": r.metrics, "fetched": r.fetched,
           "live": r.delivered.live, "rolled_up": r.delivered.rolled,
           "rollup_buckets": r.delivered.buckets, "rejected": dict(r.delivered.rejected)}  # fmt: skip
    print(json.dumps(out) if args.json else " ".join(f"{k}={v}" for k, v in out.items()))
    return 0


def read_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(timestamps, values) of a CSV ``timestamp,value`` (a header row is skipped)."""
    ts: list[float] = []
    vs: list[float] = []
    with path.open(newline="") as fh:
        for n, row in enumerate(csv.reader(fh), 1):
            if not row or row[0].startswith("#"):
                continue
            if len(row) < 2:
                raise ValueError(f"{path}:{n}: expected timestamp,value")
            try:
                t = _time(row[0].strip())
                v = float(row[1])
            except ValueError:
                if n == 1:
                    continue  # a header
                raise ValueError(f"{path}:{n}: not a timestamp,value row: {row[:2]}") from None
            ts.append(t)
            vs.append(v)
            if len(ts) > MAX_IMPORT_POINTS:
                raise ValueError(f"{path}: more than {MAX_IMPORT_POINTS} rows")
    return np.asarray(ts, dtype=np.float64), np.asarray(vs, dtype=np.float64)


def _time(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        t = dt.datetime.fromisoformat(text)
        return (t if t.tzinfo else t.replace(tzinfo=dt.UTC)).timestamp()


def run_import(args: argparse.Namespace, settings: Settings) -> int:
    try:
        t, v = read_csv(Path(args.file))
    except (OSError, ValueError) as exc:
        print(f"skyline: import: {exc}", file=sys.stderr)
        return 1
    store = _store(settings)
    have = store.read(args.metric).timestamps
    fresh = ~np.isin(np.floor(t).astype(np.int64), have.astype(np.int64))  # never twice
    d = deliver(store, settings, {args.metric: (t[fresh], v[fresh])}, time.time())
    out = {"metric": args.metric, "rows": len(t), "live": d.live, "rolled_up": d.rolled,
           "already_stored": int((~fresh).sum()), "rejected": dict(d.rejected)}  # fmt: skip
    print(json.dumps(out) if args.json else " ".join(f"{k}={v}" for k, v in out.items()))
    return 0 if not d.rejected else 1
