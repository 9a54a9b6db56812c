"""Marking an anomaly resolved: a verdict in its trail, and the incident it opened
resolved on every channel that keeps incidents (PagerDuty: an Events API v2
``resolve`` with the same ``dedup_key`` as the trigger).

Used by ``POST /api/v1/anomalies/<ref>/resolve`` and ``skyline alerts resolve --anomaly ID``.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from skyline.alerting.base import DeliveryError
from skyline.alerting.channels import make_channel
from skyline.db.models import AlertLog, Anomaly, AnomalyVerdict, Metric
from skyline.settings import Settings

STAGE = "operator"
RESOLVED = "resolved"


@runtime_checkable
class Resolvable(Protocol):
    """A channel that keeps incidents open until told otherwise."""

    def resolve(self, metric: str) -> None: ...


class NoSuchAnomaly(LookupError):
    pass


def resolve_anomaly(settings: Settings, engine: Engine, anomaly_id: int,
                    who: str) -> dict[str, str]:  # fmt: skip
    """Record the resolution and resolve the incident on each channel that delivered
    the anomaly and can resolve; returns ``{channel: "resolved" | "failed: why"}``."""
    with Session(engine) as db:
        found = db.execute(
            select(Anomaly, Metric.name).join(Metric, Anomaly.metric_id == Metric.id)
            .where(Anomaly.id == anomaly_id)
        ).first()  # fmt: skip
        if found is None:
            raise NoSuchAnomaly(f"no anomaly with id {anomaly_id}")
        anomaly, metric = found
        delivered = db.scalars(
            select(AlertLog.channel).where(AlertLog.anomaly_id == anomaly_id,
                                           AlertLog.status == "sent").distinct()
        ).all()  # fmt: skip
        event_id, metric_id = anomaly.event_id, anomaly.metric_id
    outcomes: dict[str, str] = {}
    for name in sorted(delivered):
        channel = make_channel(name, settings.alerters)
        if not isinstance(channel, Resolvable):
            continue
        try:
            channel.resolve(metric)
            outcomes[name] = RESOLVED
        except DeliveryError as exc:  # PermanentError too
            outcomes[name] = f"failed: {exc}"[:300]
    now = int(time.time())
    with Session(engine) as db:
        db.add(AnomalyVerdict(anomaly_id=anomaly_id, stage=STAGE, verdict=RESOLVED,
                              reason=f"resolved by {who}"[:200], detail={"channels": outcomes}))  # fmt: skip
        for name, outcome in outcomes.items():
            ok = outcome == RESOLVED
            db.add(AlertLog(event_id=event_id, anomaly_id=anomaly_id, metric_id=metric_id,
                            channel=name, rule_pattern="", status=RESOLVED if ok else "failed",
                            error=None if ok else outcome, delivered_at=now if ok else None))  # fmt: skip
        db.commit()
    return outcomes
