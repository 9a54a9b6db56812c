"""``skyline vista backfill NAME --days N`` and ``skyline import FILE.csv --metric NAME``.

Both take the route pulled points take (``route.deliver``): the last day into the
live store, in time order, so the analyzer judges every point; older points into the
rollups mirage and ionosphere read.  A backfill asks the source for its whole window
and stores only what the store lacks, then leaves the cursor where it was or later.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from skyline.ingest.vista.importer import import_points, read_csv
from skyline.ingest.vista.pull import pull
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
            result = pull(source, store, store.redis, settings, now, since=now - args.days * 86400)
        finally:
            source.close()
    except SourceError as exc:
        print(f"skyline: vista backfill {args.name}: {exc.reason}: {exc}", file=sys.stderr)
        return 1
    done = result.delivered
    out = {"source": args.name, "metrics": result.metrics, "fetched": result.fetched,
           "live": done.live, "rolled_up": done.rolled, "rollup_buckets": done.buckets,
           "rejected": dict(done.rejected)}  # fmt: skip
    print(json.dumps(out) if args.json else " ".join(f"{k}={v}" for k, v in out.items()))
    return 0


def run_import(args: argparse.Namespace, settings: Settings) -> int:
    try:
        with open(args.file, newline="") as fh:
            t, v = read_csv(fh, args.file)
    except (OSError, ValueError) as exc:
        print(f"skyline: import: {exc}", file=sys.stderr)
        return 1
    try:
        out = import_points(_store(settings), settings, args.metric, t, v, time.time())
    except ValueError as exc:
        print(f"skyline: import: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(out) if args.json else " ".join(f"{k}={v}" for k, v in out.items()))
    return 0 if not out["rejected"] else 1
