"""Learning: profiles made with learn=True grow learnt generations from later anomalies.

A periodic pass (the reference's §6.3, simplified): for each metric with an enabled
learn profile, each stored anomaly that ionosphere did not match, younger than
``learn_lookback`` and older than ``learn_valid_ts_older_than`` (so late data has
settled), not learnt from before:

1. features of the ``learn_full_duration_days`` window ending at the anomaly
   (from the history source: rollups for the older days, raw for the last one);
2. for each candidate parent (an enabled learn profile with generation below
   ``max_generations``), the percent difference of those features from its ORIGIN's
   (the generation-0 ancestor) features over the same long duration;
3. within ``max_percent_diff_from_origin`` -> a new profile of the anomaly's window
   at the parent's full_duration: parent_id, generation + 1, learn=True,
   validated=False (the webapp lists it for validation).  The deepest qualifying
   parent is used, so generations never exceed ``max_generations``.

Limits come from the metric's SQL row; a row still at the schema's column defaults
uses the ``[ionosphere]`` defaults instead, so an operator can change them globally
and override per metric in SQL.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import redis
from sqlalchemy import Engine, exists, or_, select
from sqlalchemy.orm import Session

from skyline.db.models import Anomaly, FeaturesProfile, Metric, ProfileMatch
from skyline.ionosphere.features import Features, FeaturesError, extract
from skyline.ionosphere.matching import features_compare
from skyline.ionosphere.profile_data import feature_vector
from skyline.ionosphere.profiles import ProfileError, create_profile
from skyline.redis_keys import RedisKeys
from skyline.timeseries import TimeSeriesStore

log = logging.getLogger("skyline.ionosphere.learn")
HistoryFn = Callable[[str, int, int], np.ndarray]  # metric, start, end -> (n, 2)
COLUMN_DEFAULTS = {"learn_full_duration_days": 30, "learn_valid_ts_older_than": 3661,
                   "max_generations": 5, "max_percent_diff_from_origin": 7.0}  # fmt: skip


def store_history(store: TimeSeriesStore, settings: Any) -> HistoryFn:
    """The rollups history (``skyline.rollups.history``) at mirage's rollup resolution."""
    from skyline.rollups import history

    resolution = int(getattr(settings.mirage, "rollup_resolution", 600))

    def fn(metric: str, start: int, end: int) -> np.ndarray:
        s = history(store, metric, start, end, resolution)
        return np.column_stack([s.timestamps.astype(np.float64), s.values])

    return fn


def limits(metric: Metric, cfg: Any) -> dict[str, Any]:
    """The metric's learning limits: its row's values unless at the column defaults."""
    return {k: getattr(cfg, k) if getattr(metric, k) == default else getattr(metric, k)
            for k, default in COLUMN_DEFAULTS.items()}  # fmt: skip


class Learner:
    def __init__(self, engine: Engine, redis_client: redis.Redis, keys: RedisKeys, settings: Any,
                 history: HistoryFn, count: Callable[[str], None] | None = None) -> None:  # fmt: skip
        self.engine, self.redis, self.keys, self.settings = engine, redis_client, keys, settings
        self.history = history
        self.count = count or (lambda name: None)
        self.seen: set[int] = set()  # anomalies already evaluated by this process
        self._origin: dict[tuple[int, int], Features] = {}

    def run_pass(self, now: int) -> int:
        """One pass over all learn metrics; returns the number of profiles learnt."""
        cfg = self.settings.ionosphere
        with Session(self.engine) as db:
            metrics = db.scalars(select(Metric).where(exists().where(
                FeaturesProfile.metric_id == Metric.id, FeaturesProfile.learn.is_(True),
                FeaturesProfile.enabled.is_(True), FeaturesProfile.deleted.is_(False)))).all()  # fmt: skip
            work = [(m.id, m.name, limits(m, cfg)) for m in metrics]
        created = 0
        for metric_id, name, lim in work:
            for anomaly_id, ts in self._candidates(metric_id, now, lim, cfg.learn_lookback):
                self.seen.add(anomaly_id)
                try:
                    created += self._learn_one(metric_id, name, anomaly_id, ts, lim)
                except (FeaturesError, ProfileError) as exc:
                    self.count("errors.learn")
                    log.warning("learning from anomaly %d of %s: %s", anomaly_id, name, exc)
        return created

    def _candidates(
        self, metric_id: int, now: int, lim: dict, lookback: int
    ) -> list[tuple[int, int]]:
        with Session(self.engine) as db:
            matched = exists().where(or_(ProfileMatch.anomaly_id == Anomaly.id,
                                         ProfileMatch.event_id == Anomaly.event_id))  # fmt: skip
            learnt = exists().where(FeaturesProfile.anomaly_id == Anomaly.id)
            rows = db.execute(select(Anomaly.id, Anomaly.timestamp).where(
                Anomaly.metric_id == metric_id, Anomaly.timestamp >= now - lookback,
                Anomaly.timestamp <= now - lim["learn_valid_ts_older_than"],
                Anomaly.verdict != "not_anomalous", ~matched, ~learnt)
                .order_by(Anomaly.timestamp)).all()  # fmt: skip
        return [(i, t) for i, t in rows if i not in self.seen]

    def _parents(self, metric_id: int, max_generations: int) -> list[FeaturesProfile]:
        with Session(self.engine, expire_on_commit=False) as db:
            return list(db.scalars(select(FeaturesProfile).where(
                FeaturesProfile.metric_id == metric_id, FeaturesProfile.learn.is_(True),
                FeaturesProfile.enabled.is_(True), FeaturesProfile.deleted.is_(False),
                FeaturesProfile.generation < max_generations)
                .order_by(FeaturesProfile.generation.desc(), FeaturesProfile.id.desc())))  # fmt: skip

    def _root(self, profile: FeaturesProfile) -> FeaturesProfile:
        with Session(self.engine, expire_on_commit=False) as db:
            node = db.get(FeaturesProfile, profile.id)
            while node is not None and node.parent_id is not None:
                parent = db.get(FeaturesProfile, node.parent_id)
                if parent is None:
                    break
                node = parent
            return node or profile

    def _long_features(self, name: str, end: int, duration: int) -> Features:
        arr = self.history(name, end - duration, end)
        return extract(arr[:, 1] if len(arr) else np.empty(0))

    def _learn_one(self, metric_id: int, name: str, anomaly_id: int, ts: int, lim: dict) -> int:
        duration = int(lim["learn_full_duration_days"]) * 86400
        window = self._long_features(name, ts, duration)
        cfg = self.settings.ionosphere
        for parent in self._parents(metric_id, int(lim["max_generations"])):
            root = self._root(parent)
            key = (root.id, duration)
            if key not in self._origin:
                self._origin[key] = self._long_features(name, root.anomaly_timestamp, duration)
            origin = self._origin[key]
            res = features_compare(feature_vector(window.ids, window.values),
                                   feature_vector(origin.ids, origin.values)[None, :],
                                   percent_similar=float(lim["max_percent_diff_from_origin"]),
                                   min_common=cfg.min_common_features)  # fmt: skip
            pdiff = float(res.percent_different[0])
            if not (res.matched[0] or pdiff <= lim["max_percent_diff_from_origin"]):
                self.count("learn.too_different")
                continue
            series = self.history(name, ts - parent.full_duration, ts)
            pid = create_profile(self.engine, self.redis, self.keys, self.settings, metric=name,
                                 series=series, anomaly_timestamp=ts,
                                 full_duration=parent.full_duration, anomaly_id=anomaly_id,
                                 label=f"learnt: {pdiff:.2f}% from origin profile {root.id}",
                                 learn=True, parent_id=parent.id,
                                 generation=parent.generation + 1)  # fmt: skip
            self.count("learn.created")
            log.info("learnt profile %d (generation %d) of %s from anomaly %d",
                     pid, parent.generation + 1, name, anomaly_id)  # fmt: skip
            return 1
        return 0
