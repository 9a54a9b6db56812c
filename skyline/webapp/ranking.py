"""The anomaly-rate ranking (Netdata's Anomaly Advisor idea): which metrics were most
anomalous in a window, by anomalies per stored point or by anomaly count.  The page an
on-call opens first in an incident: ``/ranking`` and ``/api/v1/ranking``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from skyline.db.models import Anomaly, Metric
from skyline.webapp.context import Context
from skyline.webapp.queries import BadFilter, whole_number

ORDERS = ("rate", "count")
MAX_LIMIT = 500
# ranking by rate reads the stored points of this many metrics, those with the most
# anomalies in the window (a metric outside them has fewer anomalies than all of them)
RATE_CANDIDATES = 500


def parse(args: Any) -> tuple[str, int]:
    """(by, limit) from the query; BadFilter naming a bad one."""
    by = args.get("by") or "rate"
    if by not in ORDERS:
        raise BadFilter(f"by: one of {', '.join(ORDERS)}")
    raw = args.get("limit")
    limit = 50 if raw in (None, "") else whole_number(raw)
    if limit is None or not 1 <= limit <= MAX_LIMIT:
        raise BadFilter(f"limit: a whole number from 1 to {MAX_LIMIT}")
    return by, limit


def rank(ctx: Context, since: int, until: int, by: str, limit: int) -> list[dict[str, Any]]:
    """The metrics with anomalies in [since, until], most anomalous first: ``anomalies``,
    ``points`` (stored points in the window; None when the window is older than the
    store keeps), ``rate`` (anomalies / points), ``last`` (newest anomaly's time)."""
    n = func.count().label("n")
    # grouped by metric id on the (metric_id, timestamp) index, names joined for the top
    # only; "timestamp + 0" keeps the planner off the timestamp index, which would visit
    # every row of a wide window and sort them (10x slower at 100k, docs/performance.md)
    at = Anomaly.timestamp + 0
    top = (
        select(Anomaly.metric_id, n, func.max(Anomaly.timestamp).label("last"))
        .where(at >= since, at <= until)
        .group_by(Anomaly.metric_id)
        .order_by(n.desc(), Anomaly.metric_id)
        .limit(limit if by == "count" else RATE_CANDIDATES)
        .subquery()
    )
    with Session(ctx.engine) as db:
        rows = db.execute(
            select(Metric.name, top.c.n, top.c.last)
            .join(top, top.c.metric_id == Metric.id)
            .order_by(top.c.n.desc(), Metric.name)
        ).all()
    points = _points(ctx, [name for name, _, _ in rows], since, until)
    out = []
    for name, count, last in rows:
        stored = points.get(name) or None
        out.append({"metric": name, "anomalies": count, "points": stored, "last": last,
                    "rate": count / stored if stored else None})  # fmt: skip
    if by == "rate":
        out.sort(key=lambda r: (r["rate"] is None, -(r["rate"] or 0), -r["anomalies"], r["metric"]))
    return out[:limit]


def _points(ctx: Context, names: list[str], since: int, until: int) -> dict[str, int]:
    out = {}
    for name, series in ctx.store.read_many(names).items():
        ts = series.timestamps
        out[name] = int(((ts >= since) & (ts <= until)).sum())
    return out
