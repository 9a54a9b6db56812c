"""What a check needs of a metric's profiles, loaded from SQL and (de)serialised for
the cache.

``ProfileMeta`` rows (the enabled profiles of a metric, ordered by last_matched,
most recent first, as of loading) change whenever a profile is created, enabled,
disabled or deleted, so they are cached under the metric's ``profiles_version``
(the cache re-orders them at check time: ``ProfileCache.get``).  A profile's
features and series never change after creation, so ``ProfileData`` is cached under
the profile id alone.

A profile whose stored data is unusable (no feature rows, only NaN values, a
series shorter than 2 points) is refused here with the reason, so a check skips it
(logged and counted by the caller) instead of failing.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

import numpy as np
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from skyline.analysis.ionosphere.feature_ids import FEATURE_IDS
from skyline.db.models import FeaturesProfile, Metric, ProfileFeature, ProfileSeries

N_FEATURES = max(FEATURE_IDS.values()) + 1  # column i of a feature vector is feature id i


@dataclass(frozen=True)
class ProfileMeta:
    id: int
    full_duration: int
    generation: int
    parent_id: int | None
    learn: bool
    last_matched: int | None
    resolution: int = 0  # seconds between points (0: unknown, an entry cached before it)


@dataclass(frozen=True)
class ProfileData:
    """A profile's feature vector (NaN where absent) and series values."""

    id: int
    features: np.ndarray  # (N_FEATURES,)
    series: np.ndarray  # (n,)

    def to_json(self) -> str:
        ids = np.flatnonzero(~np.isnan(self.features))
        return json.dumps({"id": self.id, "f": [ids.tolist(), self.features[ids].tolist()],
                           "s": self.series.tolist()}, separators=(",", ":"))  # fmt: skip

    @classmethod
    def from_json(cls, raw: str | bytes) -> ProfileData:
        body = json.loads(raw)
        return cls(body["id"], feature_vector(*body["f"]), np.asarray(body["s"], np.float64))


def feature_vector(ids: list[int] | np.ndarray, values: list[float] | np.ndarray) -> np.ndarray:
    """A dense (N_FEATURES,) vector, NaN for absent features; unknown ids are ignored."""
    out = np.full(N_FEATURES, np.nan)
    for i, v in zip(ids, values, strict=True):
        if 0 <= int(i) < N_FEATURES and v is not None and math.isfinite(v):
            out[int(i)] = float(v)
    return out


def metas_to_json(metas: list[ProfileMeta]) -> str:
    return json.dumps([asdict(m) for m in metas], separators=(",", ":"))


def metas_from_json(raw: str | bytes) -> list[ProfileMeta]:
    return [ProfileMeta(**m) for m in json.loads(raw)]


def load_metas(engine: Engine, metric: str) -> list[ProfileMeta]:
    """The metric's enabled profiles, most recently matched first."""
    with Session(engine) as db:
        rows = db.scalars(
            select(FeaturesProfile).join(Metric)
            .where(Metric.name == metric, FeaturesProfile.enabled.is_(True),
                   FeaturesProfile.deleted.is_(False))
        ).all()  # fmt: skip
        metas = [ProfileMeta(r.id, r.full_duration, r.generation, r.parent_id, r.learn,
                             r.last_matched, r.resolution) for r in rows]  # fmt: skip
    return order_metas(metas, {})


def order_metas(metas: list[ProfileMeta], last_matched: dict[int, int]) -> list[ProfileMeta]:
    """Most recently matched first (``last_matched`` overrides the metas' own times),
    then newest first."""

    def when(m: ProfileMeta) -> int:
        return max(m.last_matched or 0, last_matched.get(m.id, 0))

    return sorted(metas, key=lambda m: (-when(m), -m.id))


class CorruptProfile(ValueError):
    """A profile's stored data cannot be compared; the message says what is wrong."""


def load_data(engine: Engine, ids: list[int]) -> dict[int, ProfileData | CorruptProfile]:
    """Features and series of the profiles ``ids``; a CorruptProfile for unusable ones."""
    if not ids:
        return {}
    feats: dict[int, tuple[list[int], list[float]]] = {i: ([], []) for i in ids}
    series: dict[int, list[tuple[int, float]]] = {i: [] for i in ids}
    with Session(engine) as db:
        for pid, fid, value in db.execute(
            select(ProfileFeature.profile_id, ProfileFeature.feature_id, ProfileFeature.value)
            .where(ProfileFeature.profile_id.in_(ids))
        ):  # fmt: skip
            feats[pid][0].append(fid)
            feats[pid][1].append(value)
        for pid, ts, value in db.execute(
            select(ProfileSeries.profile_id, ProfileSeries.timestamp, ProfileSeries.value)
            .where(ProfileSeries.profile_id.in_(ids))
        ):  # fmt: skip
            series[pid].append((ts, value))
    out: dict[int, ProfileData | CorruptProfile] = {}
    for pid in ids:
        vec = feature_vector(*feats[pid])
        if not feats[pid][0]:
            out[pid] = CorruptProfile(f"profile {pid} has no feature rows")
        elif np.isnan(vec).all():
            out[pid] = CorruptProfile(f"profile {pid} has no finite feature values")
        else:
            out[pid] = _with_series(pid, vec, series[pid])
    return out


def _with_series(
    pid: int, vec: np.ndarray, points: list[tuple[int, float]]
) -> ProfileData | CorruptProfile:
    values = np.array([v for _, v in sorted(points) if v is not None and math.isfinite(v)])
    if len(values) < 2:
        return CorruptProfile(
            f"profile {pid} has {len(values)} finite series points (fewer than 2)"
        )
    return ProfileData(pid, vec, values)
