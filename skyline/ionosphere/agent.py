"""The ionosphere daemon: anomalies of metrics with features profiles, matched or sent on.

Reads ``stream:ionosphere`` in the ``ionosphere`` consumer group.  For each event:
the window ``(timestamp - full_duration, timestamp]`` from the store (for a
duration longer than the store holds, the rollup history), features once, then
every enabled profile of the metric at that duration (``check``).

- Match: a ``not_anomalous`` verdict (stage ionosphere) with the profile id, match
  type and distance / percent difference; a ``profile_matches`` row holding the
  event id (panorama stores the anomaly asynchronously; ``anomaly_id`` is filled in
  when the anomaly row exists, now or on a later maintenance pass); the profile's
  matched counters bumped.  Nothing reaches the alerts stream.
- No match, or the check could not be made: ``routing.onward`` from stage
  ionosphere (the alerts stream, with the reason).  An anomaly is never lost
  because its profiles are broken: corrupt profiles are refused, logged, counted
  (``errors.corrupt_profile``) and skipped.

At start: the feature ids are synced into SQL, tsfresh is imported by one
throw-away extraction (its pandas/statsmodels import takes seconds: never inside a
check), and ``ionosphere:metrics`` is rebuilt from SQL.  No numba code is used
(matching is numpy/scipy FFT), so there is no JIT to warm up.  A periodic pass (``[ionosphere] learn_interval``) links matches to their
anomalies and runs learning (``learn``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from skyline import routing
from skyline.daemon import OUTAGES, Daemon
from skyline.db.models import Anomaly, FeaturesProfile, Metric, ProfileMatch
from skyline.events import AnomalyEvent, VerdictEvent, publish_verdict
from skyline.ionosphere.cache import ProfileCache
from skyline.ionosphere.check import CheckResult, Match, check
from skyline.ionosphere.features import FeaturesError, extract, sync_features
from skyline.ionosphere.learn import Learner, store_history
from skyline.streams import StreamConsumer, consumer_name

HistoryFn = Callable[[str, int, int], np.ndarray]


class Ionosphere(Daemon):
    name = "ionosphere"
    interval = 0.0  # type: ignore[assignment]  # run_once blocks on the stream instead

    def __init__(self, *args, history: HistoryFn | None = None, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.history = history

    def setup(self) -> None:
        self.engine: Engine = self.open_database()
        cfg = self.settings.ionosphere
        sync_features(self.engine)
        extract(np.sin(np.arange(200) / 7.0))  # import tsfresh/pandas now, not in a check
        self.rebuild_metrics_set()
        if self.history is None:
            self.history = store_history(self.store, self.settings)
        self.cache = ProfileCache(self.engine, self.redis, self.keys, cfg, self.counters.inc)
        self.downstream = routing.Heartbeats(self.redis, self.keys)
        self.learner = Learner(self.engine, self.redis, self.keys, self.settings, self.history,
                               self.counters.inc)  # fmt: skip
        self._last_maintenance = 0.0
        self.consumer = StreamConsumer(self.redis, [self.keys.ionosphere_stream()], "ionosphere",
                                       consumer_name(self.name), claim_idle_ms=cfg.claim_idle * 1000)  # fmt: skip
        self.consumer.ensure_groups()

    def rebuild_metrics_set(self) -> None:
        """``ionosphere:metrics`` := metrics with an enabled, not deleted profile (SQL)."""
        with Session(self.engine) as db:
            names = set(db.scalars(
                select(Metric.name).join(FeaturesProfile, FeaturesProfile.metric_id == Metric.id)
                .where(FeaturesProfile.enabled.is_(True), FeaturesProfile.deleted.is_(False))))  # fmt: skip
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(self.keys.ionosphere_metrics())
        if names:
            pipe.sadd(self.keys.ionosphere_metrics(), *sorted(names))
        pipe.execute()
        self.log.info("ionosphere:metrics rebuilt: %d metrics with enabled profiles", len(names))

    def run_once(self) -> None:
        try:
            block = int(self.settings.ionosphere.interval * 1000)
            for stream, entry_id, fields in self.consumer.read(block_ms=block):
                self.handle(fields)
                self.consumer.ack(stream, entry_id)
        except Exception:
            self.consumer.recover()
            raise
        self._maintenance()

    def handle(self, fields: dict[bytes, bytes]) -> None:
        try:
            event = AnomalyEvent.from_fields(fields)
        except ValueError as exc:
            self.counters.inc("errors.malformed")
            self.log.warning("dropping malformed entry: %s", exc)
            return
        self.counters.inc("checks")
        try:
            result = self.check_event(event)
        except OUTAGES:
            raise
        except FeaturesError as exc:
            self.counters.inc("errors.features")
            self.log.warning("%s: cannot check %s: %s", event.id, event.metric, exc)
            return self._onward(event, f"ionosphere could not check it ({exc})")
        except Exception as exc:  # a bug must not lose the anomaly: it still alerts
            self.counters.inc("errors.check")
            self.log.exception("%s: check of %s failed", event.id, event.metric)
            return self._onward(event, f"ionosphere check failed ({type(exc).__name__})")
        self._record(event, result)

    def window(self, metric: str, end: int, duration: int) -> np.ndarray:
        """Values of ``(end - duration, end]``: the store, or the history when the store
        does not reach back far enough (a mirage-length profile)."""
        start = end - duration
        s = self.store.read(metric)
        if (not len(s) or s.timestamps[0] > start + 2 * _step(s.timestamps)) and self.history:
            arr = self.history(metric, start, end)
            return arr[(arr[:, 0] > start) & (arr[:, 0] <= end), 1] if len(arr) else np.empty(0)
        return s.values[(s.timestamps > start) & (s.timestamps <= end)]

    def check_event(self, event: AnomalyEvent) -> CheckResult:
        """Each full_duration the metric has profiles at, the event's own first: its
        window ending at the event, compared with the profiles of that duration."""
        metas, data = self.cache.get(event.metric)
        durations = sorted({m.full_duration for m in metas},
                           key=lambda d: (d != event.full_duration, d))  # fmt: skip
        out = CheckResult()
        failure: FeaturesError | None = None
        t0 = time.perf_counter()
        for duration in durations:
            values = self.window(event.metric, event.timestamp, duration)
            try:
                r = check(values, metas, data, duration, self.settings.ionosphere)
            except FeaturesError as exc:
                failure = exc
                continue
            out.compared += r.compared
            out.refused += r.refused
            for k, v in r.best.items():
                out.best[k] = min(out.best.get(k, np.inf), v)
            if r.match is not None:
                out.match = r.match
                break
        self.counters.inc("features_time", time.perf_counter() - t0)
        self.counters.inc("profiles_compared", len(out.compared))
        for pid, why in out.refused:
            self.counters.inc("errors.corrupt_profile")
            self.log.error("%s: skipping profile %d of %s: %s", event.id, pid, event.metric, why)
        if failure is not None and not out.compared:
            raise failure
        return out

    def _record(self, event: AnomalyEvent, result: CheckResult) -> None:
        self._bump_checked(result.compared)
        if result.match is None:
            self.counters.inc("not_matched")
            if not result.compared:
                why = "no usable profile"
            else:
                near = ", ".join(f"{k} {v:.3g}" for k, v in result.best.items())
                why = f"no profile of {len(result.compared)} matched" + (
                    f" (nearest: {near})" if near else ""
                )
            return self._onward(event, why)
        self.counters.inc("matched")
        m = result.match
        self._store_match(event, m)
        reason = (f"matched features profile {m.profile_id} ({m.match_type}, "
                  + (f"{m.distance:.3g}% different)" if m.match_type == "features"
                     else f"distance {m.distance:.3g})"))  # fmt: skip
        detail = {"profile_id": m.profile_id, "match_type": m.match_type, **m.detail}
        publish_verdict(self.redis, self.keys, VerdictEvent(event.id, event.metric, event.timestamp,
                        "ionosphere", "not_anomalous", reason, detail, time.time()),
                        self.settings.analyzer.stream_maxlen)  # fmt: skip

    def _onward(self, event: AnomalyEvent, reason: str) -> None:
        pipe = self.redis.pipeline(transaction=False)
        routing.onward(pipe, self.keys, self.settings, event, "ionosphere", self.downstream,
                       reason=reason)  # fmt: skip
        pipe.execute()

    def _bump_checked(self, ids: list[int]) -> None:
        if not ids:
            return
        with Session(self.engine) as db:
            db.execute(update(FeaturesProfile).where(FeaturesProfile.id.in_(ids)).values(
                checked_count=FeaturesProfile.checked_count + 1, last_checked=int(time.time())))  # fmt: skip
            db.commit()

    def _store_match(self, event: AnomalyEvent, m: Match) -> None:
        """Idempotent by event id: a re-delivered event is not recorded twice."""
        now = int(time.time())
        with Session(self.engine) as db:
            seen = db.scalar(select(ProfileMatch.id).where(ProfileMatch.event_id == event.id,
                                                           ProfileMatch.profile_id == m.profile_id))  # fmt: skip
            if seen is not None:
                return
            anomaly_id = db.scalar(select(Anomaly.id).where(Anomaly.event_id == event.id))
            db.add(ProfileMatch(profile_id=m.profile_id, anomaly_id=anomaly_id, event_id=event.id,
                                metric_timestamp=event.timestamp, match_type=m.match_type,
                                distance=m.distance, features_sum=m.features_sum,
                                common_features_count=m.common))  # fmt: skip
            values = ({"matched_count": FeaturesProfile.matched_count + 1, "last_matched": now}
                      if m.match_type == "features" else
                      {"motif_matched_count": FeaturesProfile.motif_matched_count + 1,
                       "motif_last_matched": now, "last_matched": now})  # fmt: skip
            db.execute(
                update(FeaturesProfile).where(FeaturesProfile.id == m.profile_id).values(**values)
            )
            db.commit()

    def _maintenance(self) -> None:
        every = self.settings.ionosphere.learn_interval
        if not every or time.monotonic() - self._last_maintenance < every:
            return
        self._last_maintenance = time.monotonic()
        self.link_matches()
        self.learner.run_pass(int(self.clock()))

    def link_matches(self) -> int:
        """Fill ``profile_matches.anomaly_id`` of matches whose anomaly is now stored."""
        with Session(self.engine) as db:
            rows = db.execute(select(ProfileMatch, Anomaly.id)
                              .join(Anomaly, Anomaly.event_id == ProfileMatch.event_id)
                              .where(ProfileMatch.anomaly_id.is_(None)).limit(1000)).all()  # fmt: skip
            for match, anomaly_id in rows:
                match.anomaly_id = anomaly_id
            db.commit()
        return len(rows)


def _step(timestamps: np.ndarray) -> int:
    return int(np.median(np.diff(timestamps))) if len(timestamps) > 1 else 60
