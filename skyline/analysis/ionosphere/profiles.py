"""Features profiles: create, enable/disable, delete, validate, list and show them.

The API the webapp calls.  A profile is an operator's statement "this window of
this metric is NOT anomalous": its features (ids from ``feature_ids``), the series
itself and motifs (the last subsequence of each ``[ionosphere] motif_sizes`` size:
the shape that was judged anomalous) are stored in SQL.

Every change keeps two Redis keys right, so routing and ionosphere's cache see it on
the very next anomaly: ``ionosphere:metrics`` (the SET of metrics with at least one
enabled profile; routing sends their anomalies to ionosphere) and the metric's
``profiles_version`` counter (INCR on every change; caches are keyed by it; never
deleted, so a version number is never reused).  Both are written after the SQL
commit without MULTI (the keys live in different Redis Cluster slots); a write lost
to a Redis failure is repaired by ionosphere's periodic ``reconcile_metrics_set``
(the version key: by the next change of the metric's profiles).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import redis
from sqlalchemy import Engine, func, or_, select
from sqlalchemy.orm import Session

from skyline.analysis.ionosphere.features import FeaturesError, extract, sync_features
from skyline.analysis.ionosphere.window import raw_window, resolution_of
from skyline.db.models import (
    Anomaly,
    Feature,
    FeaturesProfile,
    Metric,
    Motif,
    ProfileFeature,
    ProfileMatch,
    ProfileSeries,
)
from skyline.db.repo import get_or_create_metric
from skyline.store.keys import RedisKeys
from skyline.store.timeseries import TimeSeriesStore

MIN_PROFILE_POINTS = 30


class ProfileError(ValueError):
    """A profile cannot be created or changed; the message says why."""


def training_window(store: TimeSeriesStore, metric: str, anomaly_timestamp: int,
                    full_duration: int) -> np.ndarray:  # fmt: skip
    """The (n, 2) [timestamp, value] window the anomaly was judged on:
    ``(anomaly_timestamp - full_duration, anomaly_timestamp]`` from the store (the
    same slicing a check uses: ``window.raw_window``)."""
    return raw_window(store, metric, anomaly_timestamp, full_duration)


def clean_series(series: Any) -> np.ndarray:
    """``series`` as a sorted (n, 2) float array of finite points; ProfileError if it
    cannot be trained on (not (n, 2), too short, all NaN, constant)."""
    try:
        arr = np.asarray(series, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ProfileError(f"series is not numeric: {exc}") from None
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ProfileError(f"series must be (n, 2) [timestamp, value] pairs, got {arr.shape}")
    arr = arr[np.isfinite(arr).all(axis=1)]
    if len(arr) == 0:
        raise ProfileError("series has no finite values (all NaN or empty)")
    arr = arr[np.argsort(arr[:, 0], kind="stable")]
    _, last = np.unique(arr[::-1, 0], return_index=True)  # last value per timestamp
    arr = arr[len(arr) - 1 - last]
    if len(arr) < MIN_PROFILE_POINTS:
        raise ProfileError(f"series too short: {len(arr)} points, at least {MIN_PROFILE_POINTS}")
    if np.ptp(arr[:, 1]) == 0:
        raise ProfileError("series is constant: a flat line has no shape to profile")
    return arr


def create_profile(engine: Engine, redis_client: redis.Redis, keys: RedisKeys, settings: Any, *,
                   metric: str, series: np.ndarray, anomaly_timestamp: int, full_duration: int,
                   anomaly_id: int | None = None, user_id: int | None = None,
                   label: str | None = None, learn: bool = False, parent_id: int | None = None,
                   generation: int = 0) -> int:  # fmt: skip
    """Store a features profile of ``series`` for ``metric``; returns its id."""
    cfg = getattr(settings, "ionosphere", settings)
    arr = clean_series(series)
    try:
        feats = extract(arr[:, 1])
    except FeaturesError as exc:
        raise ProfileError(f"no features: {exc}") from None
    if feats.count == 0:
        raise ProfileError("no finite features could be calculated from the series")
    sync_features(engine)
    with Session(engine) as db:
        m = get_or_create_metric(db, metric)
        fp = FeaturesProfile(metric_id=m.id, anomaly_id=anomaly_id,
                             anomaly_timestamp=int(anomaly_timestamp),
                             full_duration=int(full_duration),
                             resolution=resolution_of(arr),
                             tsfresh_version=_tsfresh_version(), calc_time=feats.calc_time,
                             features_count=feats.count, features_sum=feats.total,
                             parent_id=parent_id, generation=generation, learn=learn,
                             label=label, user_id=user_id)  # fmt: skip
        db.add(fp)
        db.flush()
        db.add_all(ProfileFeature(profile_id=fp.id, feature_id=int(i), value=float(v))
                   for i, v in zip(feats.ids, feats.values, strict=True))  # fmt: skip
        db.add_all(ProfileSeries(profile_id=fp.id, timestamp=int(t), value=float(v))
                   for t, v in arr)  # fmt: skip
        n = len(arr)
        db.add_all(Motif(profile_id=fp.id, start_index=n - size, size=size,
                         distance_max=cfg.motif_max_distance)
                   for size in sorted(set(cfg.motif_sizes)) if 0 < size <= n)  # fmt: skip
        m.ionosphere_enabled = True
        db.commit()
        profile_id = fp.id
    pipe = redis_client.pipeline(transaction=False)  # two keys, two cluster slots: no MULTI
    pipe.sadd(keys.ionosphere_metrics(), metric)
    pipe.incr(keys.profiles_version(metric))
    pipe.execute()
    return profile_id


def _tsfresh_version() -> str:
    from importlib.metadata import version

    return version("tsfresh")


def _descendants(db: Session, profile_id: int) -> list[int]:
    out, frontier = [], [profile_id]
    while frontier:
        children = list(db.scalars(select(FeaturesProfile.id)
                                   .where(FeaturesProfile.parent_id.in_(frontier))))  # fmt: skip
        children = [c for c in children if c not in out]
        out += children
        frontier = children
    return out


def _refresh_metric(
    db: Session, redis_client: redis.Redis, keys: RedisKeys, metric: Metric
) -> None:
    """Make ``metrics.ionosphere_enabled`` and the Redis SET agree with SQL; bump version."""
    live = db.scalar(select(func.count()).select_from(FeaturesProfile).where(
        FeaturesProfile.metric_id == metric.id, FeaturesProfile.enabled.is_(True),
        FeaturesProfile.deleted.is_(False)))  # fmt: skip
    metric.ionosphere_enabled = bool(live)
    name = metric.name
    db.commit()
    pipe = redis_client.pipeline(transaction=False)  # two keys, two cluster slots: no MULTI
    if live:
        pipe.sadd(keys.ionosphere_metrics(), name)
    else:
        pipe.srem(keys.ionosphere_metrics(), name)
    pipe.incr(keys.profiles_version(name))
    pipe.execute()


def _get(db: Session, profile_id: int) -> FeaturesProfile:
    fp = db.get(FeaturesProfile, profile_id)
    if fp is None or fp.deleted:
        raise ProfileError(f"no features profile {profile_id}")
    return fp


def set_enabled(engine: Engine, redis_client: redis.Redis, keys: RedisKeys, profile_id: int,
                enabled: bool) -> None:  # fmt: skip
    """Enable or disable a profile; disabling also disables its learnt progeny."""
    with Session(engine) as db:
        fp = _get(db, profile_id)
        fp.enabled = enabled
        if not enabled:
            for child in _descendants(db, profile_id):
                db.get(FeaturesProfile, child).enabled = False  # type: ignore[union-attr]
        _refresh_metric(db, redis_client, keys, fp.metric)


def delete_profile(engine: Engine, redis_client: redis.Redis, keys: RedisKeys,
                   profile_id: int) -> None:  # fmt: skip
    """Mark a profile (and its learnt progeny) deleted and disabled; its matches and
    data stay for the record, and it is never compared again."""
    with Session(engine) as db:
        fp = _get(db, profile_id)
        for pid in [profile_id, *_descendants(db, profile_id)]:
            row = db.get(FeaturesProfile, pid)
            row.enabled, row.deleted = False, True  # type: ignore[union-attr]
        _refresh_metric(db, redis_client, keys, fp.metric)


def validate_profile(engine: Engine, profile_id: int, user_id: int | None = None) -> None:
    """An operator confirms a (typically learnt) profile is right."""
    with Session(engine) as db:
        fp = _get(db, profile_id)
        fp.validated = True
        if fp.user_id is None:
            fp.user_id = user_id
        db.commit()


_LIST_FIELDS = ("id", "created_at", "anomaly_timestamp", "full_duration", "enabled", "validated",
                "generation", "parent_id", "matched_count", "last_matched", "checked_count",
                "motif_matched_count", "features_count", "features_sum", "label")  # fmt: skip


def _as_dict(fp: FeaturesProfile) -> dict[str, Any]:
    return {f: getattr(fp, f) for f in _LIST_FIELDS}


def list_profiles(engine: Engine, metric: str) -> list[dict[str, Any]]:
    """The metric's profiles (not deleted), newest first."""
    with Session(engine) as db:
        rows = db.scalars(select(FeaturesProfile).join(Metric).where(
            Metric.name == metric, FeaturesProfile.deleted.is_(False))
            .order_by(FeaturesProfile.id.desc()))  # fmt: skip
        return [_as_dict(fp) for fp in rows]


def profile_detail(engine: Engine, profile_id: int) -> dict[str, Any]:
    """One profile with its metric, learn flag, series points, features by name, motifs."""
    with Session(engine) as db:
        fp = _get(db, profile_id)
        out = _as_dict(fp)
        names = dict(db.execute(select(Feature.id, Feature.name)).all())
        out.update(
            metric=fp.metric.name, learn=fp.learn, resolution=fp.resolution,
            tsfresh_version=fp.tsfresh_version, calc_time=fp.calc_time, last_checked=fp.last_checked,
            motif_last_matched=fp.motif_last_matched, user_id=fp.user_id, anomaly_id=fp.anomaly_id,
            series=[[s.timestamp, s.value] for s in fp.series],
            data_seconds=_span(fp.series, fp.resolution),
            features={names.get(f.feature_id, str(f.feature_id)): f.value for f in fp.features},
            motifs=[{"start_index": m.start_index, "size": m.size, "distance_max": m.distance_max}
                    for m in fp.motifs],
        )  # fmt: skip
        return out


def _span(series: list[ProfileSeries], resolution: int) -> int:
    """How much time the profile's points cover (each point holds ``resolution``
    seconds): less than its ``full_duration`` when the store held less."""
    if not series:
        return 0
    stamps = [s.timestamp for s in series]
    return max(stamps) - min(stamps) + max(resolution, 0)


def matches_for_anomaly(engine: Engine, anomaly: int | str) -> list[dict[str, Any]]:
    """Profile matches of an anomaly given its id (int) or its event id (str)."""
    with Session(engine) as db:
        if isinstance(anomaly, int):
            event_id = db.scalar(select(Anomaly.event_id).where(Anomaly.id == anomaly))
            cond = or_(ProfileMatch.anomaly_id == anomaly, ProfileMatch.event_id == event_id)
        else:
            cond = ProfileMatch.event_id == anomaly
        rows = db.scalars(select(ProfileMatch).where(cond).order_by(ProfileMatch.id))
        return [{"id": r.id, "profile_id": r.profile_id, "anomaly_id": r.anomaly_id,
                 "event_id": r.event_id, "metric_timestamp": r.metric_timestamp,
                 "match_type": r.match_type, "distance": r.distance,
                 "features_sum": r.features_sum, "common_features_count": r.common_features_count,
                 "validated": r.validated, "created_at": r.created_at} for r in rows]  # fmt: skip
