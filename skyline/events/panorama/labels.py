"""Panorama's second job: the label sets of new labelled metrics, into SQL.

flux and vista record a labelled metric's label set in the Redis ``labels`` hash and
add the metric to ``labels:new`` (skyline.store.labels).  Each panorama run pops a
batch of those, writes a ``metrics`` row (if missing) and one ``metric_labels`` row
per label, and commits.  A batch SQL refuses for an outage is given back to the set
and retried on the next run; rows already there are left as they are (the first
label set seen is the metric's).  Label names are cut to the column's 128 characters
and values to 512; two names that are the same once cut keep the first one's value.
"""

from __future__ import annotations

from sqlalchemy import Engine, select
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from skyline.db.models import MetricLabel
from skyline.db.repo import get_or_create_metric
from skyline.store.labels import LabelIndex

BATCH = 500
NAME_LENGTH, VALUE_LENGTH = 128, 512  # metric_labels' columns
# the database refusing a batch for its data, not for an outage: written one by one
REFUSALS = (DataError, IntegrityError)


def sync(engine: Engine, index: LabelIndex, batch: int = BATCH) -> int:
    """Write up to ``batch`` new label sets; returns how many metrics were written.
    On an outage the popped metrics are put back and the error raised; a batch the
    database refuses for its data (``REFUSALS``) is written one metric at a time, and
    the metrics refused alone are dropped (raised as ``Refused``), so that one metric
    cannot hold every other's label set back for ever."""
    metrics = index.take_new(batch)
    if not metrics:
        return 0
    try:
        return _write(engine, index, metrics)
    except REFUSALS:
        if len(metrics) == 1:
            raise Refused(metrics) from None
    refused = []
    for metric in metrics:
        try:
            _write(engine, index, [metric])
        except REFUSALS:
            refused.append(metric)
    if refused:
        raise Refused(refused)
    return len(metrics)


class Refused(Exception):
    """Metrics whose label sets the database refused (dropped, not retried)."""

    def __init__(self, metrics: list[str]) -> None:
        super().__init__(f"{len(metrics)} label set(s) refused: {', '.join(metrics)[:300]}")
        self.metrics = metrics


def _write(engine: Engine, index: LabelIndex, metrics: list[str]) -> int:
    try:
        sets = index.get_many(metrics)
        with Session(engine) as db:
            for metric in metrics:
                row = get_or_create_metric(db, metric)
                have = set(
                    db.scalars(select(MetricLabel.name).where(MetricLabel.metric_id == row.id))
                )
                for name, value in sets[metric].items():
                    name = name[:NAME_LENGTH]
                    if name not in have:
                        have.add(name)
                        db.add(MetricLabel(metric_id=row.id, name=name, value=value[:VALUE_LENGTH]))
            db.commit()
    except REFUSALS:
        raise
    except BaseException:
        index.give_back(metrics)
        raise
    return len(metrics)
