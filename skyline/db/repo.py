"""Small shared queries used by several daemons."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from skyline.db.models import AnomalyVerdict, Metric
from skyline.events.anomaly import failed_channels


def get_or_create_metric(db: Session, name: str) -> Metric:
    """The metric row for ``name``, inserted if missing (safe against a concurrent insert)."""
    metric = db.scalar(select(Metric).where(Metric.name == name))
    if metric is not None:
        return metric
    try:
        with db.begin_nested():
            metric = Metric(name=name)
            db.add(metric)
    except IntegrityError:
        # a locking read sees the other transaction's committed row; a plain one would
        # read this transaction's snapshot (MariaDB's REPEATABLE READ) and find nothing
        metric = db.scalars(
            select(Metric).where(Metric.name == name).with_for_update(read=True)
        ).one()
    return metric


def delivery_failures(db: Session, anomaly_ids: list[int]) -> dict[int, list[str]]:
    """The channels the latest alerters verdict of each anomaly records as failed (only
    anomalies with a failed channel are in the answer): ``alerted (slack failed)``."""
    if not anomaly_ids:
        return {}
    newest = (
        select(func.max(AnomalyVerdict.id))
        .where(AnomalyVerdict.anomaly_id.in_(anomaly_ids), AnomalyVerdict.stage == "alerters")
        .group_by(AnomalyVerdict.anomaly_id)
    )
    rows = db.execute(
        select(AnomalyVerdict.anomaly_id, AnomalyVerdict.detail).where(
            AnomalyVerdict.id.in_(newest)
        )
    )
    out = {}
    for anomaly_id, detail in rows:
        failed = failed_channels(detail if isinstance(detail, dict) else None)
        if failed:
            out[anomaly_id] = failed
    return out
