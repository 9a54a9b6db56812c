"""Small shared queries used by several daemons."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from skyline.db.models import Metric


def commit_unless_stored(db: Session) -> bool:
    """Commit rows whose unique key another process may be writing too (the same
    event consumed twice, two learners); False, rolled back, when it did first."""
    try:
        db.commit()
    except IntegrityError:
        db.rollback()
        return False
    return True


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
