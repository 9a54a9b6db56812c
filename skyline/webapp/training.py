"""Training features profiles from the web UI and the API: one place that turns
"this anomaly is normal" into a profile (ionosphere's ``create_profile``), shared by
the anomaly page's button and ``POST /api/v1/anomalies/<ref>/profiles``."""

from __future__ import annotations

from typing import Any

from flask import abort
from sqlalchemy import select
from sqlalchemy.orm import Session

from skyline.analysis.ionosphere import profiles
from skyline.analysis.ionosphere.profiles import ProfileError
from skyline.db.models import Anomaly, FeaturesProfile, ProfileMatch
from skyline.webapp.context import Context

TRAINING_LOCK_TTL = 120  # s; longer than any feature extraction

__all__ = [
    "ProfileError",
    "detail_or_404",
    "metric_profiles",
    "profile_matches",
    "train_anomaly",
    "trained_from",
]


def trained_from(c: Context, anomaly_id: int) -> int | None:
    """The id of the live profile already trained from this anomaly, if any."""
    with Session(c.engine) as db:
        return db.scalar(
            select(FeaturesProfile.id).where(
                FeaturesProfile.anomaly_id == anomaly_id, FeaturesProfile.deleted.is_(False)
            )
        )


def train_anomaly(c: Context, anomaly_id: int, user_id: int | None, *, learn: bool = False,
                  label: str | None = None) -> int:  # fmt: skip
    """Create a profile from the window the anomaly was judged on; returns its id.
    ProfileError (with a reason for the operator) when that cannot be done."""
    lock = c.keys.training_lock(anomaly_id)
    if not c.redis.set(lock, "1", nx=True, ex=TRAINING_LOCK_TTL):  # a double click, a retry
        raise ProfileError("this anomaly is already being trained")
    try:
        return _train(c, anomaly_id, user_id, learn, label)
    finally:
        c.redis.delete(lock)


def _train(c: Context, anomaly_id: int, user_id: int | None, learn: bool,
           label: str | None) -> int:  # fmt: skip
    existing = trained_from(c, anomaly_id)
    if existing is not None:
        raise ProfileError(f"this anomaly is already trained as profile {existing}")
    with Session(c.engine) as db:
        a = db.get(Anomaly, anomaly_id)
        if a is None:
            raise ProfileError("no such anomaly")
        if a.source == "thunder":
            raise ProfileError(
                "a thunder event (Skyline's own health check) is no point of a stored "
                "series: there is nothing to train"
            )
        metric, ts, full_duration = a.metric.name, a.timestamp, a.full_duration
    series = profiles.training_window(c.store, metric, ts, full_duration)
    if len(series) == 0:
        raise ProfileError(
            "the store no longer holds this anomaly's window (it keeps the last "
            f"{c.settings.skyline.full_duration // 3600} h): it cannot be trained"
        )
    return profiles.create_profile(
        c.engine, c.redis, c.keys, c.settings, metric=metric, series=series,
        anomaly_timestamp=ts, full_duration=full_duration, anomaly_id=anomaly_id,
        user_id=user_id, label=label, learn=learn,
    )  # fmt: skip


def metric_profiles(c: Context, metric: str) -> list[dict[str, Any]]:
    return profiles.list_profiles(c.engine, metric)


def profile_matches(c: Context, profile_id: int, limit: int = 200) -> list[dict[str, Any]]:
    """The anomalies a profile silenced, newest first (linked by anomaly or event id)."""
    with Session(c.engine) as db:
        rows = db.scalars(
            select(ProfileMatch)
            .where(ProfileMatch.profile_id == profile_id)
            .order_by(ProfileMatch.id.desc())
            .limit(limit)
        )
        return [
            {"id": r.id, "anomaly": r.anomaly_id or r.event_id, "timestamp": r.metric_timestamp,
             "match_type": r.match_type, "distance": r.distance, "created_at": r.created_at}
            for r in rows
        ]  # fmt: skip


def detail_or_404(c: Context, profile_id: int) -> dict[str, Any]:
    """The profile's detail (ionosphere's ``profile_detail``), or a 404 response."""
    try:
        return profiles.profile_detail(c.engine, profile_id)
    except ProfileError:
        abort(404, description="no such features profile")
