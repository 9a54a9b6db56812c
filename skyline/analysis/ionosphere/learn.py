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
   (the generation-0 ancestor) features over the same long duration.  The rollups
   keep only ``[mirage] rollup_retention`` (+ a day), so an origin's window is soon
   cut at its start: its features are computed once, by the first pass after the
   profile is made while the history covers the window whole, and stored in SQL
   (``learn_origin_features``); later passes read them from there.  When neither
   long window is whole (no origin has stored features, or the anomaly's own window
   is cut) nothing is compared: the anomaly is counted ``learn.refused``, NOT marked
   evaluated, and left out of the passes for ``REFUSED_RETRY`` seconds;
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
Evaluations and kept windows older than ``learn_lookback`` are pruned (``prune``)
by ionosphere's maintenance, whether learning is on or off.

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
from sqlalchemy.orm import Session

from skyline.analysis.ionosphere.features import Features, FeaturesError, extract
from skyline.analysis.ionosphere.matching import features_compare
from skyline.analysis.ionosphere.profile_data import feature_vector
from skyline.analysis.ionosphere.profiles import ProfileError, create_profile
from skyline.analysis.ionosphere.window import HistoryFn, covers, history_window, raw_window
from skyline.db.models import (
    Anomaly,
    FeaturesProfile,
    LearnEvaluated,
    LearnOriginFeature,
    LearnWindow,
    Metric,
    ProfileMatch,
)
from skyline.db.repo import commit_unless_stored
from skyline.runtime.daemon import OUTAGES
from skyline.store.keys import RedisKeys
from skyline.store.timeseries import TimeSeriesStore

log = logging.getLogger("skyline.analysis.ionosphere.learn")
COLUMN_DEFAULTS = {"learn_full_duration_days": 30, "learn_valid_ts_older_than": 3661,
                   "max_generations": 5, "max_percent_diff_from_origin": 7.0}  # fmt: skip
ORIGINS_KEPT = 256  # origin features cached (LRU), one entry per (origin, duration)
REFUSED_RETRY = 3600  # a refused anomaly is left out of the passes this long (s)


class NotYet(Exception):
    """A long window is not whole: the anomaly is refused but not marked evaluated."""


def rollup_resolution(settings: Any) -> int:
    """The resolution of the history source: mirage's rollups."""
    return int(getattr(settings.mirage, "rollup_resolution", 600))


def store_history(store: TimeSeriesStore, settings: Any) -> HistoryFn:
    """The rollups history (``skyline.store.rollups.history``) at mirage's rollup resolution."""
    from skyline.store.rollups import history

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


def prune(engine: Engine, oldest: int) -> None:
    """Forget evaluations and kept windows of anomalies older than ``oldest`` (the
    learning lookback); run by ionosphere's maintenance, learning on or off."""
    with Session(engine) as db:
        db.execute(delete(LearnEvaluated).where(LearnEvaluated.anomaly_timestamp < oldest))
        db.execute(delete(LearnWindow).where(LearnWindow.timestamp < oldest))
        db.commit()


def load_origin(engine: Engine, profile_id: int, duration: int) -> Features | None:
    """The stored features of an origin profile over ``duration``, or None."""
    with Session(engine) as db:
        rows = db.execute(select(LearnOriginFeature.feature_id, LearnOriginFeature.value).where(
            LearnOriginFeature.profile_id == profile_id, LearnOriginFeature.duration == duration)
            .order_by(LearnOriginFeature.feature_id)).all()  # fmt: skip
    if not rows:
        return None
    return Features(np.array([r[0] for r in rows], dtype=np.int64),
                    np.array([r[1] for r in rows], dtype=np.float64))  # fmt: skip


def store_origin(engine: Engine, profile_id: int, duration: int, feats: Features) -> None:
    """Keep an origin's features over ``duration`` (once: another process may race)."""
    with Session(engine) as db:
        db.add_all(LearnOriginFeature(profile_id=profile_id, duration=int(duration),
                                      feature_id=int(i), value=float(v))
                   for i, v in zip(feats.ids, feats.values, strict=True))  # fmt: skip
        if not commit_unless_stored(db):
            log.info("origin features of profile %d were stored by another process", profile_id)


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
        self._refused: dict[int, float] = {}  # anomaly id -> monotonic time to try it again
        self._uncovered: set[tuple[int, int]] = set()  # origins logged as not whole

    def run_pass(self, now: int) -> int:
        """One bounded pass (``learn_max_per_pass``, ``learn_time_budget``) over the
        learn metrics, from where the last pass stopped; returns profiles learnt."""
        cfg = self.settings.ionosphere
        deadline = time.monotonic() + cfg.learn_time_budget
        prune(self.engine, now - cfg.learn_lookback)
        budget, created = cfg.learn_max_per_pass, 0
        for metric_id, name, lim in self._metrics():
            self._prepare_origins(metric_id, name, lim)
            for anomaly_id, ts in self._candidates(metric_id, now, lim, cfg.learn_lookback, budget):
                if budget <= 0 or time.monotonic() >= deadline:
                    self.count("learn.pass_cut")
                    return created
                budget -= 1
                created += self._evaluate(metric_id, name, anomaly_id, ts, lim)
            self._cursor = metric_id  # its turn is over: the next pass starts after it
            if budget <= 0 or time.monotonic() >= deadline:
                self.count("learn.pass_cut")
                return created
        return created

    def _prepare_origins(self, metric_id: int, name: str, lim: dict) -> None:
        """Compute and store the long-window features of the metric's origins that have
        none yet, while the history still covers their window (every pass, so before
        any anomaly needs them)."""
        duration = int(lim["learn_full_duration_days"]) * 86400
        try:
            for root in {r.id: r for r in map(self._root, self._parents(
                    metric_id, int(lim["max_generations"])))}.values():  # fmt: skip
                self._origin_features(name, root, duration)
        except OUTAGES:
            raise
        except Exception:  # a bug or bad data: counted; tried again by the next pass
            self.count("errors.learn")
            log.exception("computing the origin features of %s failed", name)

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
        except NotYet as exc:  # not marked: tried again after REFUSED_RETRY
            self.count("learn.refused")
            log.info("not learning from anomaly %d of %s yet: %s", anomaly_id, name, exc)
            self._refused[anomaly_id] = time.monotonic() + REFUSED_RETRY
            return 0
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
            if not commit_unless_stored(db):  # another ionosphere process evaluated it too
                log.info("anomaly %d was already marked evaluated", anomaly_id)

    def _candidates(
        self, metric_id: int, now: int, lim: dict, lookback: int, limit: int
    ) -> list[tuple[int, int]]:
        clock = time.monotonic()
        self._refused = {i: t for i, t in self._refused.items() if t > clock}
        with Session(self.engine) as db:
            matched = exists().where(or_(ProfileMatch.anomaly_id == Anomaly.id,
                                         ProfileMatch.event_id == Anomaly.event_id))  # fmt: skip
            learnt = exists().where(FeaturesProfile.anomaly_id == Anomaly.id)
            evaluated = exists().where(LearnEvaluated.anomaly_id == Anomaly.id)
            rows = db.execute(select(Anomaly.id, Anomaly.timestamp).where(
                Anomaly.metric_id == metric_id, Anomaly.timestamp >= now - lookback,
                Anomaly.timestamp <= now - lim["learn_valid_ts_older_than"],
                Anomaly.verdict != "not_anomalous", ~matched, ~learnt, ~evaluated,
                Anomaly.id.not_in(list(self._refused)))
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

    def _long_features(self, name: str, end: int, duration: int) -> Features | None:
        """Features of the history's ``(end - duration, end]``, None if not whole."""
        points = history_window(self.history, name, end, duration)
        return extract(points[:, 1]) if covers(points, end, duration) else None

    def _origin_features(self, name: str, root: FeaturesProfile, duration: int) -> Features | None:
        """The origin's features over ``duration`` ending at its anomaly: stored in SQL
        the first time its window is whole, read from there afterwards (the rollups
        soon lose the window's start); None while it has none (logged once)."""
        key = (root.id, duration)
        if key in self._origin:
            self._origin.move_to_end(key)
            return self._origin[key]
        feats = load_origin(self.engine, root.id, duration)
        if feats is None:
            feats = self._long_features(name, root.anomaly_timestamp, duration)
            if feats is None or not feats.count:
                if key not in self._uncovered:
                    self._uncovered.add(key)
                    log.warning("origin profile %d of %s: the history does not cover its "
                                "%d-day learning window; it cannot be learnt from",
                                root.id, name, duration // 86400)  # fmt: skip
                return None
            store_origin(self.engine, root.id, duration, feats)
        self._origin[key] = feats
        while len(self._origin) > ORIGINS_KEPT:
            self._origin.popitem(last=False)
        return feats

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
        parents = self._parents(metric_id, int(lim["max_generations"]))
        if not parents:
            return 0
        candidates = []
        for parent in parents:
            root = self._root(parent)
            origin = self._origin_features(name, root, duration)
            if origin is not None:
                candidates.append((parent, root, origin))
        if not candidates:
            raise NotYet(f"no origin profile has features over its {duration // 86400}-day "
                         "window")  # fmt: skip
        window = self._long_features(name, ts, duration)
        if window is None:
            raise NotYet(f"the history does not cover its {duration // 86400}-day window")
        refused = False
        for parent, root, origin in candidates:
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
