"""The time range of a page's graph: ``?from=&until=`` in the page URL (epoch seconds,
ISO 8601 or an age like ``6h``), so a link reproduces the view; the picker's presets;
and the markers drawn on a metric's graph (its anomalies and alert deliveries)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from skyline.db.models import AlertLog, Anomaly, Metric
from skyline.webapp.queries import BadFilter, parse_time

PRESETS = (("1h", 3600), ("6h", 6 * 3600), ("24h", 86400), ("7d", 7 * 86400))
MAX_SPAN = 400 * 86400  # a year and a bit: the rollups' reach, and more than any page needs
MAX_MARKS = 500


@dataclass(frozen=True)
class GraphRange:
    since: int
    until: int
    custom: bool  # from/until came from the URL (not the page's default)

    @property
    def span(self) -> int:
        return self.until - self.since


def graph_range(args: Any, default_since: int, default_until: int, now: float) -> GraphRange:
    """The range asked for in ``args`` (``from``, ``until``), else the default; a
    BadFilter naming the parameter for a bad, reversed or too wide range."""
    raw_from, raw_until = args.get("from"), args.get("until")
    since = parse_time(raw_from, "from", now)
    until = parse_time(raw_until, "until", now)
    custom = since is not None or until is not None
    if not custom:
        since, until = default_since, default_until
    elif until is None:
        until = int(now)
    elif since is None:
        since = until - (default_until - default_since)
    assert since is not None and until is not None
    if since >= until:
        raise BadFilter("from: must be before until")
    if until - since > MAX_SPAN:
        raise BadFilter(f"from: a range of at most {MAX_SPAN // 86400} days")
    return GraphRange(since, until, custom)


def presets(anchor: int | None = None) -> list[tuple[str, dict[str, str]]]:
    """(label, URL args) of the picker's presets: relative to now (``from=6h``), or,
    around ``anchor`` (an anomaly's time), that long before it and a sixth after."""
    if anchor is None:
        return [(label, {"from": label}) for label, _ in PRESETS]
    return [(label, {"from": str(anchor - s), "until": str(anchor + s // 6)})
            for label, s in PRESETS]  # fmt: skip


def marks(engine: Any, metric: str, since: int, until: int) -> dict[str, list[dict[str, Any]]]:
    """The metric's anomalies and alert deliveries in [since, until], oldest first (at
    most MAX_MARKS of each: the newest)."""
    with Session(engine) as db:
        metric_id = db.scalar(select(Metric.id).where(Metric.name == metric))
        if metric_id is None:
            return {"anomalies": [], "alerts": []}
        anomalies = db.execute(
            select(Anomaly.id, Anomaly.timestamp, Anomaly.value, Anomaly.verdict, Anomaly.source)
            .where(Anomaly.metric_id == metric_id, Anomaly.timestamp >= since,
                   Anomaly.timestamp <= until)
            .order_by(Anomaly.timestamp.desc()).limit(MAX_MARKS)
        ).all()  # fmt: skip
        at = func.coalesce(AlertLog.delivered_at, AlertLog.created_at)
        alerts = db.execute(
            select(AlertLog.anomaly_id, at, AlertLog.channel, AlertLog.status)
            .where(AlertLog.metric_id == metric_id, at >= since, at <= until)
            .order_by(at.desc()).limit(MAX_MARKS)
        ).all()  # fmt: skip
    return {
        "anomalies": [{"id": i, "timestamp": t, "value": v if math.isfinite(v) else None,
                       "verdict": verdict, "source": s}
                      for i, t, v, verdict, s in reversed(anomalies)],
        "alerts": [{"anomaly_id": i, "timestamp": t, "channel": c, "status": s}
                   for i, t, c, s in reversed(alerts)],
    }  # fmt: skip
