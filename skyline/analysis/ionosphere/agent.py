"""The ionosphere daemon: anomalies of metrics with features profiles, matched or sent on.

Reads ``{stream}:ionosphere`` in the ``ionosphere`` consumer group.  For each event
and each full_duration the metric has profiles at (the event's own first): the
window ``(timestamp - duration, timestamp]`` (``window.window_for``: the raw store
up to ``[skyline] full_duration``, the rollup history beyond, compared only with
profiles of the history's resolution), features once, then the enabled profiles of
that duration (``check``).

- Match: a ``not_anomalous`` verdict (stage ionosphere) with the profile id, match
  type and distance / percent difference; a ``profile_matches`` row holding the
  event id (panorama stores the anomaly asynchronously; ``anomaly_id`` is filled in
  when the anomaly row exists, now or on a later maintenance pass); the profile's
  matched counters bumped.  Nothing reaches the alerts stream.
- No match, or the check could not be made or recorded: ``routing.onward`` from
  stage ionosphere (the alerts stream, with the reason).  An anomaly is never lost
  because its profiles are broken: corrupt profiles are refused, logged, counted
  (``errors.corrupt_profile``) and skipped; an error recording the result is
  counted (``errors.record``) and the anomaly alerts; an entry that still fails is
  re-read at most ``max_deliveries`` times, then sent on and acknowledged
  (``errors.dead_letter``).

At start: the feature ids are synced into SQL, tsfresh is imported by one
throw-away extraction (its pandas/statsmodels import takes seconds: never inside a
check), and ``ionosphere:metrics`` is reconciled with SQL.  No numba code is used
(matching is numpy/scipy FFT), so there is no JIT to warm up.  Every
``maintenance_interval`` matches are linked to their anomalies and
``ionosphere:metrics`` is reconciled again; every ``learn_interval`` a learning pass
(``learn``, bounded by ``learn_time_budget``) runs.
"""

from __future__ import annotations

import time

import numpy as np
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from skyline.analysis.ionosphere.cache import ProfileCache
from skyline.analysis.ionosphere.check import CheckResult, Match, check
from skyline.analysis.ionosphere.features import FeaturesError, extract, sync_features
from skyline.analysis.ionosphere.learn import (
    Learner,
    prune,
    rollup_resolution,
    save_windows,
    store_history,
)
from skyline.analysis.ionosphere.window import HistoryFn, Window, window_for
from skyline.db.models import Anomaly, FeaturesProfile, Metric, ProfileMatch
from skyline.events import routing
from skyline.events.anomaly import AnomalyEvent, VerdictEvent, publish_verdict
from skyline.events.stream_daemon import StreamDaemon
from skyline.runtime.daemon import OUTAGES


class Ionosphere(StreamDaemon):
    name = "ionosphere"

    def __init__(self, *args, history: HistoryFn | None = None,
                 history_resolution: int | None = None, **kwargs) -> None:  # fmt: skip
        super().__init__(*args, **kwargs)
        self.history = history
        self.history_resolution = history_resolution or rollup_resolution(self.settings)

    def streams(self) -> list[str]:
        return [self.keys.ionosphere_stream()]

    def prepare(self) -> None:
        self.engine: Engine = self.open_database()
        cfg = self.settings.ionosphere
        sync_features(self.engine)
        extract(np.sin(np.arange(200) / 7.0))  # import tsfresh/pandas now, not in a check
        self.reconcile_metrics_set()
        if self.history is None:
            self.history = store_history(self.store, self.settings)
            self._check_learning_window()
        self.cache = ProfileCache(self.engine, self.redis, self.keys, cfg, self.counters.inc)
        self.downstream = routing.Heartbeats(self.redis, self.keys)
        self.learner = Learner(self.engine, self.redis, self.keys, self.settings, self.history,
                               self.counters.inc, store=self.store,
                               history_resolution=self.history_resolution)  # fmt: skip
        self._last_maintenance = self._last_learn = time.monotonic()

    def _check_learning_window(self) -> None:
        """Warn when the rollups cannot hold the default learning window whole: then
        every anomaly is refused (``learn.refused``) and nothing is learnt."""
        cfg = self.settings.ionosphere
        retention = int(getattr(self.settings.mirage, "rollup_retention", 0))
        if cfg.learn_interval and cfg.learn_full_duration_days * 86400 > retention:
            self.log.warning("learn_full_duration_days (%d) is longer than [mirage] "
                             "rollup_retention (%d s): no window is whole, nothing is learnt",
                             cfg.learn_full_duration_days, retention)  # fmt: skip

    def reconcile_metrics_set(self) -> int:
        """Make ``ionosphere:metrics`` = metrics with an enabled, not deleted profile
        (SQL), at start and every ``maintenance_interval``: repairs a SADD/SREM that
        a profile change lost after its SQL commit.  Returns the members fixed.

        The set is read before SQL: a profile change commits SQL before it writes the
        set, so a member it added is always in the SQL read and never removed here.
        The one race left (a profile disabled between the two reads) leaves a stale
        member until the next pass, which only sends that metric's anomalies through
        an ionosphere with no profile for it: they alert."""
        key = self.keys.ionosphere_metrics()
        members = {m.decode() if isinstance(m, bytes) else m for m in self.redis.smembers(key)}
        with Session(self.engine) as db:
            names = set(db.scalars(
                select(Metric.name).join(FeaturesProfile, FeaturesProfile.metric_id == Metric.id)
                .where(FeaturesProfile.enabled.is_(True), FeaturesProfile.deleted.is_(False))))  # fmt: skip
        missing, extra = sorted(names - members), sorted(members - names)
        pipe = self.redis.pipeline(transaction=False)
        if missing:
            pipe.sadd(key, *missing)
        if extra:
            pipe.srem(key, *extra)
        pipe.execute()
        if missing or extra:
            self.counters.inc("metrics_set.repaired", len(missing) + len(extra))
            self.log.warning("ionosphere:metrics repaired: added %s, removed %s",
                             missing[:10], extra[:10])  # fmt: skip
        return len(missing) + len(extra)

    def run_once(self) -> None:
        with self.recovering():
            for stream, entry_id, fields in self.consumer.read(self.block_ms):
                self.process(stream, entry_id, fields)
        self._maintenance()

    def process(self, stream: str, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        """Handle one entry and acknowledge it.  An error that escapes ``handle`` (not
        an outage) leaves the entry pending, so it is read again; when it fails at its
        ``max_deliveries``-th delivery or later it is dead-lettered instead: sent on to
        the alerts, acknowledged, counted.  One bad entry never blocks the stream.

        Deliveries are counted by the group (``XPENDING``), so across restarts; a
        redelivery after an outage counts too, which only makes a later real
        failure dead-letter sooner (the anomaly then alerts)."""
        deliveries = self.consumer.deliveries(stream, entry_id)
        try:
            self.handle(fields, first_delivery=deliveries <= 1)
        except OUTAGES:
            raise
        except Exception:
            if deliveries < self.settings.ionosphere.max_deliveries:
                raise
            self.log.exception("entry %r failed at delivery %d", entry_id, deliveries)
            self._dead_letter(fields, deliveries)
        self.consumer.ack(stream, entry_id)

    def _dead_letter(self, fields: dict[bytes, bytes], deliveries: int) -> None:
        """Send a failing entry on unchecked; never raises (but an outage), so the
        caller always acknowledges it, however malformed it is."""
        self.counters.inc("errors.dead_letter")
        try:
            event = AnomalyEvent.from_fields(fields)
            name = f"{event.id} of {event.metric}"
        except Exception:  # whatever the parse raises, the entry is dropped (and acked)
            self.counters.inc("errors.malformed")
            self.log.exception("dead-lettering a malformed entry: %r", fields)
            return
        self.log.error("%s: failed %d times; sending it on unchecked", name, deliveries)
        try:
            self._onward(event, f"ionosphere failed on it {deliveries} times")
        except OUTAGES:
            raise
        except Exception:
            self.log.exception("%s: could not send it on; dropped", name)

    def handle(self, fields: dict[bytes, bytes], first_delivery: bool = True) -> None:
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
        try:
            self._record(event, result)
        except OUTAGES:
            raise
        except Exception as exc:  # e.g. IntegrityError, DataError: the anomaly still alerts
            self.counters.inc("errors.record")
            self.log.exception("%s: recording the check of %s failed", event.id, event.metric)
            return self._onward(
                event, f"ionosphere could not record its check ({type(exc).__name__})"
            )
        if first_delivery:  # a redelivered event is not counted twice
            self._bump_checked(event, result.compared)

    def window(self, metric: str, end: int, duration: int) -> Window:
        """``(end - duration, end]``: raw points up to ``[skyline] full_duration``, the
        rollup history (with its resolution) beyond (``window.window_for``)."""
        return window_for(self.store, self.history, self.history_resolution,
                          self.settings.skyline.full_duration, metric, end, duration)  # fmt: skip

    def check_event(self, event: AnomalyEvent) -> CheckResult:
        """Each full_duration the metric has profiles at, the event's own first: its
        window ending at the event, compared with the profiles of that duration."""
        metas, data = self.cache.get(event.metric)
        durations = sorted({m.full_duration for m in metas},
                           key=lambda d: (d != event.full_duration, d))  # fmt: skip
        out = CheckResult()
        failure: FeaturesError | None = None
        t0 = time.perf_counter()
        learning = bool(self.settings.ionosphere.learn_interval)  # 0: off, keep no window
        learn_durations = {m.full_duration for m in metas if m.learn and learning}
        for duration in durations:
            win = self.window(event.metric, event.timestamp, duration)
            if duration in learn_durations and win.resolution is None:
                out.windows[duration] = win.points
            try:
                r = check(win.values, metas, data, duration, self.settings.ionosphere,
                          resolution=win.resolution)  # fmt: skip
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
        if result.match is None:
            self.counters.inc("not_matched")
            if not result.compared:
                why = "no usable profile"
            else:
                near = ", ".join(f"{k} {v:.3g}" for k, v in result.best.items())
                why = f"no profile of {len(result.compared)} matched" + (
                    f" (nearest: {near})" if near else ""
                )
            if result.windows:
                save_windows(self.engine, event.metric, event.id, event.timestamp, result.windows)
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

    def _bump_checked(self, event: AnomalyEvent, ids: list[int]) -> None:
        """``checked_count + 1`` of the compared profiles: statistics only, so a
        failure is counted and logged but changes nothing about the verdict given."""
        if not ids:
            return
        try:
            with Session(self.engine) as db:
                db.execute(update(FeaturesProfile).where(FeaturesProfile.id.in_(ids)).values(
                    checked_count=FeaturesProfile.checked_count + 1, last_checked=int(time.time())))  # fmt: skip
                db.commit()
        except OUTAGES:
            raise
        except Exception:
            self.counters.inc("errors.record")
            self.log.exception("%s: bumping checked_count of %s failed", event.id, ids)

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
        self.cache.note_match(m.profile_id, now)

    def _maintenance(self) -> None:
        """Every ``maintenance_interval``: link matches, reconcile ``ionosphere:metrics``,
        prune learning rows older than ``learn_lookback``; every ``learn_interval`` (0:
        never): a learning pass (bounded in time)."""
        cfg, now = self.settings.ionosphere, time.monotonic()
        if now - self._last_maintenance >= cfg.maintenance_interval:
            self._last_maintenance = now
            self.link_matches()
            self.reconcile_metrics_set()
            prune(self.engine, int(self.clock()) - cfg.learn_lookback)
        if cfg.learn_interval and now - self._last_learn >= cfg.learn_interval:
            self._last_learn = now
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
