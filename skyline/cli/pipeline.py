"""``skyline alerts ...`` and ``skyline anomalies ...``: the alert pipeline from the shell."""

from __future__ import annotations

import argparse
import json
import sys
from typing import cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from skyline.cli.output import iso, num, table
from skyline.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    alerts = sub.add_parser("alerts", help="mute, unmute, list mutes, resolve PagerDuty incidents")
    a = alerts.add_subparsers(dest="action", required=True)
    m = a.add_parser("mute", help="no alerts for metrics matching PATTERN for a while")
    m.add_argument("pattern")
    m.add_argument("--for", dest="duration", required=True, help="e.g. 90s, 30m, 2h, 1d")
    m.add_argument("--reason")
    u = a.add_parser("unmute")
    u.add_argument("pattern")
    ls = a.add_parser("mutes", help="active mutes")
    ls.add_argument("--json", action="store_true")
    r = a.add_parser("resolve", help="mark an anomaly resolved (its PagerDuty incident too), "
                     "or resolve the PagerDuty incident of METRIC")  # fmt: skip
    which = r.add_mutually_exclusive_group(required=True)
    which.add_argument("metric", nargs="?")
    which.add_argument("--anomaly", type=int, metavar="ID", help="the anomaly's id")
    r.add_argument("--json", action="store_true")
    an = sub.add_parser("anomalies", help="recorded anomalies")
    an_sub = an.add_subparsers(dest="action", required=True)
    al = an_sub.add_parser("list")
    al.add_argument("--since", type=int, default=0, metavar="TS")
    al.add_argument("--metric", help="only this metric")
    al.add_argument("--limit", type=int, default=1000)
    al.add_argument("--json", action="store_true")


def cmd_alerts(args: argparse.Namespace, settings: Settings) -> int:
    from skyline.alerting import mutes
    from skyline.db import current_engine

    if args.action == "resolve" and args.anomaly is None:
        from skyline.alerting.channels.pagerduty import PagerDuty

        PagerDuty(settings.alerters.pagerduty, settings.alerters.timeout).resolve(args.metric)
        print(f"resolved skyline:{args.metric} on PagerDuty")
        return 0
    engine = current_engine(settings)
    if args.action == "resolve":
        return _resolve_anomaly(args, settings, engine)
    if args.action == "mute":
        try:
            mutes.check_pattern(args.pattern)
            seconds = mutes.parse_duration(args.duration)
        except ValueError as exc:
            print(f"skyline: {exc}", file=sys.stderr)
            return 2
        until = mutes.mute(engine, args.pattern, seconds, args.reason)
        print(f"muted {args.pattern!r} until {iso(until)}")
    elif args.action == "unmute":
        print(f"removed {mutes.unmute(engine, args.pattern)} mute(s) of {args.pattern!r}")
    else:
        active = mutes.active(engine)
        if args.json:
            print(json.dumps([{"pattern": m.pattern, "until": m.until, "reason": m.reason}
                              for m in active]))  # fmt: skip
        elif active:
            print(table(["pattern", "until", "reason"],
                        [[m.pattern, iso(m.until), m.reason or ""] for m in active]))  # fmt: skip
        else:
            print("no active mutes", file=sys.stderr)
    return 0


def _resolve_anomaly(args: argparse.Namespace, settings: Settings, engine) -> int:  # noqa: ANN001
    import getpass

    from skyline.alerting.resolve import NoSuchAnomaly, resolve_anomaly

    try:
        outcomes = resolve_anomaly(settings, engine, args.anomaly, f"{getpass.getuser()} (cli)")
    except NoSuchAnomaly as exc:
        print(f"skyline: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"anomaly_id": args.anomaly, "channels": outcomes}))
    else:
        print(f"anomaly {args.anomaly} resolved")
        if outcomes:
            print(table(["channel", "incident"], sorted(outcomes.items())))
    failed = any(v != "resolved" for v in outcomes.values())
    return 1 if failed else 0


def cmd_anomalies(args: argparse.Namespace, settings: Settings) -> int:
    from skyline.db import current_engine
    from skyline.db.models import Anomaly, Metric
    from skyline.events.anomaly import verdict_text
    from skyline.events.panorama.trail import delivery_failures

    query = (
        select(Anomaly, Metric.name)
        .join(Metric, Anomaly.metric_id == Metric.id)
        .where(Anomaly.timestamp >= args.since)
        .order_by(Anomaly.timestamp.desc())
        .limit(args.limit)
    )
    if args.metric:
        query = query.where(Metric.name == args.metric)
    with Session(current_engine(settings)) as db:
        found = db.execute(query).all()
        failed = delivery_failures(db, [a.id for a, _ in found])
        rows = [
            {
                "id": a.id,
                "event_id": a.event_id,
                "metric": name,
                "timestamp": a.timestamp,
                "value": a.value,
                "source": a.source,
                "triggered_algorithms": a.triggered_algorithms,
                "algorithms_run": a.algorithms_run,
                "verdict": a.verdict,
                "failed_channels": failed.get(a.id, []),
                "verdict_text": verdict_text(a.verdict, failed.get(a.id, [])),
            }  # fmt: skip
            for a, name in found
        ]
    if args.json:
        print(json.dumps(rows))
    elif rows:
        print(table(["id", "time", "metric", "value", "verdict"],
                    [[r["id"], iso(cast(int, r["timestamp"])), r["metric"],
                      num(cast(float, r["value"])), r["verdict_text"]] for r in rows]))  # fmt: skip
    else:
        print("no anomalies recorded" + (f" since {iso(args.since)}" if args.since else ""),
              file=sys.stderr)  # fmt: skip
    return 0
