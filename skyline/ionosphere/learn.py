"""Learning: profiles made with learn=True grow learnt generations from later anomalies.

When ionosphere does not match an anomaly of a metric with a learn profile, it keeps
the anomaly's raw window at each learn duration (``learn_windows``, ``save_windows``):
the raw store holds ``[skyline] full_duration`` (+ roomba's grace), so by the time an
anomaly may be learnt from (``learn_valid_ts_older_than``) the start of its window
is gone from the store.

A periodic pass (the reference's §6.3, simplified): for each metric with an enabled
learn profile, each stored anomaly that ionosphere did not match, younger than
``learn_lookback`` and older than ``learn_valid_ts_older_than`` (so late data has
settled), not learnt from nor evaluated before (``learn_evaluated``):

1. features of the ``learn_full_duration_days`` window ending at the anomaly
   (from the history source: rollups for the older days, raw for the last one);
2. for each candidate parent (an enabled learn profile with generation below
   ``max_generations``), the percent difference of those features from its ORIGIN's
   (the generation-0 ancestor) features over the same long duration;
3. within ``max_percent_diff_from_origin`` -> a new profile of the anomaly's window
   at the parent's full_duration, at the resolution checks compare it with: for a
   duration up to ``[skyline] full_duration`` the raw window (kept at check time,
   or still in the store), for a longer one the rollup history when the parent has
   the history's resolution; otherwise nothing is learnt (``learn.refused``).  The
   profile has parent_id, generation + 1, learn=True, validated=False (the webapp
   lists it for validation).  The deepest qualifying parent is used, so
   generations never exceed ``max_generations``.

A pass evaluates at most ``learn_max_per_pass`` anomalies and stops after
``learn_time_budget`` seconds (it runs between checks); the next pass goes on with
the next metrics.  An anomaly is marked evaluated only once evaluated, or after an
error that is not an outage (an outage ends the pass; it is evaluated again).

Limits come from the metric's SQL row; a row still at the schema's column defaults
uses the ``[ionosphere]`` defaults instead, so an operator can change them globally
and override per metric in SQL.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
import redis
from sqlalchemy import Engine, delete, exists, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from skyline.daemon import OUTAGES
from skyline.db.models import (
    Anomaly,
    FeaturesProfile,
    LearnEvaluated,
    LearnWindow,
    Metric,
    ProfileMatch,
)
from skyline.ionosphere.features import Features, FeaturesError, extract
from skyline.ionosphere.matching import features_compare
from skyline.ionosphere.profile_data import feature_vector
from skyline.ionosphere.profiles import ProfileError, create_profile
from skyline.ionosphere.window import HistoryFn, covers, history_window, raw_window
from skyline.redis_keys import RedisKeys
from skyline.timeseries import TimeSeriesStore

log = logging.getLogger("skyline.ionosphere.learn")
COLUMN_DEFAULTS = {"learn_full_duration_days": 30, "learn_valid_ts_older_than": 3661,
                   "max_generations": 5, "max_percent_diff_from_origin": 7.0}  # fmt: skip
ORIGINS_KEPT = 256  # origin features cached (LRU), one entry per (origin, duration)


def rollup_resolution(settings: Any) -> int:
    """The resolution of the history source: mirage's rollups."""
    return int(getattr(settings.mirage, "rollup_resolution", 600))


def store_history(store: TimeSeriesStore, settings: Any) -> HistoryFn:
    """The rollups history (``skyline.rollups.history``) at mirage's rollup resolution."""
    from skyline.rollups import history

    resolution = rollup_resolution(settings)

    def fn(metric: str, start: int, end: int) -> np.ndarray:
        s = history(store, metric, start, end, resolution)
        return np.column_stack([s.timestamps.astype(np.float64), s.values])

    return fn


def save_windows(engine: Engine, metric: str, event_id: str, timestamp: int,
                 windows: dict[int, np.ndarray]) -> None:  # fmt: skip
    """Keep the raw ``windows`` (full_duration -> (n, 2) points) of an unmatched
    anomaly for learning; idempotent by (event id, duration)."""
    with Session(engine) as db:
        metric_id = db.scalar(select(Metric.id).where(Metric.name == metric))
        have = set(db.scalars(select(LearnWindow.full_duration)
                              .where(LearnWindow.event_id == event_id)))  # fmt: skip
        if metric_id is None:
            return
        db.add_all(LearnWindow(event_id=event_id, full_duration=int(d), metric_id=metric_id,
                               timestamp=int(timestamp),
                               points=np.ascontiguousarray(p, np.float64).tobytes())
                   for d, p in windows.items() if int(d) not in have and len(p))  # fmt: skip
        db.commit()


def _points(raw: bytes) -> np.ndarray:
    return np.frombuffer(raw, dtype=np.float64).reshape(-1, 2)


def limits(metric: Metric, cfg: Any) -> dict[str, Any]:
    """The metric's learning limits: its row's values unless at the column defaults."""
    return {k: getattr(cfg, k) if getattr(metric, k) == default else getattr(metric, k)
            for k, default in COLUMN_DEFAULTS.items()}  # fmt: skip


class Learner:
    def __init__(self, engine: Engine, redis_client: redis.Redis, keys: RedisKeys, settings: Any,
                 history: HistoryFn, count: Callable[[str], None] | None = None, *,
                 store: TimeSeriesStore, history_resolution: int | None = None) -> None:  # fmt: skip
        self.engine, self.redis, self.keys, self.settings = engine, redis_client, keys, settings
        self.history, self.store = history, store
        self.history_resolution = history_resolution or rollup_resolution(settings)
        self.count = count or (lambda name: None)
        self._origin: OrderedDict[tuple[int, int], Features] = OrderedDict()
        self._cursor = 0  # the last metric id a pass finished: the next pass goes on after it

    def run_pass(self, now: int) -> int:
        """One bounded pass (``learn_max_per_pass``, ``learn_time_budget``) over the
        learn metrics, from where the last pass stopped; returns profiles learnt."""
        cfg = self.settings.ionosphere
        deadline = time.monotonic() + cfg.learn_time_budget
        self._prune(now - cfg.learn_lookback)
        budget, created = cfg.learn_max_per_pass, 0
        for metric_id, name, lim in self._metrics():
            for anomaly_id, ts in self._candidates(metric_id, now, lim, cfg.learn_lookback, budget):
                if budget <= 0 or time.monotonic() >= deadline:
                    self.count("learn.pass_cut")
                    return created
                budget -= 1
                created += self._evaluate(metric_id, name, anomaly_id, ts, lim)
            if budget <= 0 or time.monotonic() >= deadline:
                self.count("learn.pass_cut")
                return created
            self._cursor = metric_id
        return created

    def _metrics(self) -> list[tuple[int, str, dict[str, Any]]]:
        """Learn metrics by id, starting after the cursor (then wrapping round)."""
        cfg = self.settings.ionosphere
        with Session(self.engine) as db:
            metrics = db.scalars(select(Metric).where(exists().where(
                FeaturesProfile.metric_id == Metric.id, FeaturesProfile.learn.is_(True),
                FeaturesProfile.enabled.is_(True), FeaturesProfile.deleted.is_(False)))
                .order_by(Metric.id)).all()  # fmt: skip
            work = [(m.id, m.name, limits(m, cfg)) for m in metrics]
        return [w for w in work if w[0] > self._cursor] + [w for w in work if w[0] <= self._cursor]

    def _evaluate(self, metric_id: int, name: str, anomaly_id: int, ts: int, lim: dict) -> int:
        """Learn from one anomaly, then mark it evaluated (not after an outage)."""
        try:
            created = self._learn_one(metric_id, name, anomaly_id, ts, lim)
        except OUTAGES:
            raise
        except (FeaturesError, ProfileError) as exc:
            self.count("errors.learn")
            log.warning("learning from anomaly %d of %s: %s", anomaly_id, name, exc)
            created = 0
        except Exception:  # a bug: logged, counted, and the anomaly is not tried for ever
            self.count("errors.learn")
            log.exception("learning from anomaly %d of %s failed", anomaly_id, name)
            created = 0
        self._mark(anomaly_id, ts)
        return created

    def _mark(self, anomaly_id: int, ts: int) -> None:
        with Session(self.engine) as db:
            db.add(LearnEvaluated(anomaly_id=anomaly_id, anomaly_timestamp=ts))
            try:
                db.commit()
            except IntegrityError:  # another ionosphere process evaluated it too
                db.rollback()
                log.info("anomaly %d was already marked evaluated", anomaly_id)

    def _prune(self, oldest: int) -> None:
        """Forget evaluations and windows of anomalies older than the lookback."""
        with Session(self.engine) as db:
            db.execute(delete(LearnEvaluated).where(LearnEvaluated.anomaly_timestamp < oldest))
            db.execute(delete(LearnWindow).where(LearnWindow.timestamp < oldest))
            db.commit()

    def _candidates(
        self, metric_id: int, now: int, lim: dict, lookback: int, limit: int
    ) -> list[tuple[int, int]]:
        with Session(self.engine) as db:
            matched = exists().where(or_(ProfileMatch.anomaly_id == Anomaly.id,
                                         ProfileMatch.event_id == Anomaly.event_id))  # fmt: skip
            learnt = exists().where(FeaturesProfile.anomaly_id == Anomaly.id)
            evaluated = exists().where(LearnEvaluated.anomaly_id == Anomaly.id)
            rows = db.execute(select(Anomaly.id, Anomaly.timestamp).where(
                Anomaly.metric_id == metric_id, Anomaly.timestamp >= now - lookback,
                Anomaly.timestamp <= now - lim["learn_valid_ts_older_than"],
                Anomaly.verdict != "not_anomalous", ~matched, ~learnt, ~evaluated)
                .order_by(Anomaly.timestamp, Anomaly.id).limit(max(limit, 1))).all()  # fmt: skip
        return [(i, t) for i, t in rows]

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
        return extract(history_window(self.history, name, end, duration)[:, 1])

    def _origin_features(self, name: str, root: FeaturesProfile, duration: int) -> Features:
        key = (root.id, duration)
        if key in self._origin:
            self._origin.move_to_end(key)
        else:
            self._origin[key] = self._long_features(name, root.anomaly_timestamp, duration)
            while len(self._origin) > ORIGINS_KEPT:
                self._origin.popitem(last=False)
        return self._origin[key]

    def _profile_series(self, name: str, anomaly_id: int, ts: int,
                        parent: FeaturesProfile) -> np.ndarray | None:  # fmt: skip
        """The anomaly's window as checks will compare it with the learnt profile, or
        None (logged) when it cannot be had at that resolution."""
        d = parent.full_duration
        if d <= self.settings.skyline.full_duration:
            points = self._kept_window(anomaly_id, d)
            if points is None:
                points = raw_window(self.store, name, ts, d)
            why = "its raw window is neither kept nor still in the store"
        elif parent.resolution == self.history_resolution:
            points = history_window(self.history, name, ts, d)
            why = "the history does not cover its window"
        else:
            points = np.empty((0, 2))
            why = (f"the parent's resolution ({parent.resolution} s) is not the history's "
                   f"({self.history_resolution} s)")  # fmt: skip
        if covers(points, ts, d):
            return points
        log.info("not learning from anomaly %d of %s at %d s: %s", anomaly_id, name, d, why)
        return None

    def _kept_window(self, anomaly_id: int, duration: int) -> np.ndarray | None:
        with Session(self.engine) as db:
            raw = db.scalar(select(LearnWindow.points).join(
                Anomaly, Anomaly.event_id == LearnWindow.event_id).where(
                Anomaly.id == anomaly_id, LearnWindow.full_duration == duration))  # fmt: skip
        return None if raw is None else _points(raw)

    def _learn_one(self, metric_id: int, name: str, anomaly_id: int, ts: int, lim: dict) -> int:
        duration = int(lim["learn_full_duration_days"]) * 86400
        window = self._long_features(name, ts, duration)
        refused = False
        for parent in self._parents(metric_id, int(lim["max_generations"])):
            root = self._root(parent)
            origin = self._origin_features(name, root, duration)
            res = features_compare(feature_vector(window.ids, window.values),
                                   feature_vector(origin.ids, origin.values)[None, :],
                                   percent_similar=float(lim["max_percent_diff_from_origin"]),
                                   min_common=self.settings.ionosphere.min_common_features)  # fmt: skip
            pdiff = float(res.percent_different[0])
            if not (res.matched[0] or pdiff <= lim["max_percent_diff_from_origin"]):
                self.count("learn.too_different")
                continue
            series = self._profile_series(name, anomaly_id, ts, parent)
            if series is None:
                refused = True
                continue
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
        if refused:
            self.count("learn.refused")
        return 0
