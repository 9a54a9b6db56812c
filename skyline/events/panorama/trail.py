"""Reads of the verdict trail panorama records: which channels failed per anomaly."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from skyline.db.models import AnomalyVerdict
from skyline.events.anomaly import failed_channels


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
