"""The analyzer daemon: every metric judged on arrival and in sweeps.

``[analyzer] mode = "default"``: the streaming detector judges every new point, in
order, with its state in Redis (``skyline.analysis.analyzer.detect``); for a point it flags,
the ensemble's votes on the series up to that point are attached as evidence.
``mode = "classic"``: the three-sigma ensemble decides on each metric's series.

Every ``arrival_interval`` it takes the metrics horizon announced in the changed
set (SPOP) and analyses them, so an anomaly is on the stream a fraction of a second
after its datapoint is stored; every ``interval`` it sweeps all metrics (which also
catches metrics that went stale), a slice per run after the arrivals, so a sweep
never holds up analysis on arrival.  Anomalies are handed on by ``skyline.events.routing``.  A detection is emitted once per (metric,
timestamp) however many passes see it.  Per-run self-metrics: total_analyzed,
total_anomalies, anomaly_breakdown.<algorithm>, exceptions.<kind>, counters,
run_time.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import cast

import numpy as np

from skyline.analysis.algorithms import EnsembleOptions, Verdict
from skyline.analysis.analyzer.analysis import (
    analyse,
    anomalous_verdicts,
    load_customs,
    publish_custom_counts,
    verdict_counts,
)
from skyline.analysis.analyzer.detect import Detection, DetectorPass, PassFailed, make_detector
from skyline.analysis.analyzer.sharding import Sharding
from skyline.events.anomaly import AnomalyEvent
from skyline.events.routing import Heartbeats, forward
from skyline.runtime.daemon import Daemon
from skyline.store.name_filter import NameFilter
from skyline.store.timeseries import Series

POP_BATCH = 5000
MAX_POP_PER_RUN = 50000
SWEEP_SLICE = 1000  # metrics a sweep analyses per run, so arrivals never wait long
WARM_UP_POINTS = 200  # a made-up series the ensemble runs on at start (``_warm_up``)


class Analyzer(Daemon):
    name = "analyzer"

    @property
    def interval(self) -> float:
        return self.settings.analyzer.arrival_interval

    @property
    def member_lease(self) -> float:
        """At most one sweep interval, so a dead analyzer's share is taken over within
        two (docs/scaling.md); at least three arrival passes."""
        cfg = self.settings.analyzer
        return max(min(self.settings.skyline.member_lease, cfg.interval), 3 * cfg.arrival_interval)

    def member_info(self) -> dict[str, object]:
        return dict(self.share_info)

    def setup(self) -> None:
        cfg = self.settings.analyzer  # its algorithms are known: the settings checked them
        self.options = EnsembleOptions.from_settings(cfg)
        self.customs = load_customs(self.settings, "analyzer")
        self.filter = NameFilter(cfg.skip, cfg.do_not_skip)
        self.emitted: dict[str, int] = {}  # metric -> timestamp of the last anomaly emitted
        self.next_sweep = 0.0
        self.sweep_todo: list[str] = []  # the rest of the sweep in progress
        self.heartbeats = Heartbeats(self.redis, self.keys)
        self.sharding = Sharding(self.redis, self.keys, self.membership)
        self.share_info: dict[str, object] = {"members": 1}
        self.detect: DetectorPass | None = None
        self._warm_up()
        if cfg.mode == "default":
            ttl = 2 * max(self.settings.skyline.full_duration, 86400)
            self.detect = DetectorPass(self.redis, self.keys, self.store, make_detector(),
                                       cfg.threshold, ttl, cfg.state_cache_mb << 20,
                                       cfg.state_checkpoint)  # fmt: skip

    def _warm_up(self) -> None:
        """Run the ensemble once on a made-up series, so that scipy and the compiled
        kernels load at start, not in the first pass that flags an anomaly (in either
        mode the ensemble runs then: the verdict, or the evidence).  About a second
        in a new process; the first alert is not delayed by it."""
        t = 1_700_000_000 + 60 * np.arange(WARM_UP_POINTS, dtype=np.int64)
        v = np.sin(np.arange(WARM_UP_POINTS) / 7.0)
        analyse({"warm-up": Series(t, v)}, float(t[-1]), self.options, False)

    def flush(self) -> None:
        """At stop: save the detector states learned since their last checkpoint."""
        if self.detect is not None:
            saved = self.detect.flush()
            self.log.info("saved %d detector states", saved)

    def run_once(self) -> None:
        """Membership first (a change puts the metrics gained at the head of the
        sweep), then arrivals this member owns, then the next slice of the sweep."""
        self._refresh_shares()
        routed = self.sharding.routed
        changed = self.sharding.route(self.pop_changed())
        self.counters.inc("shard.routed", self.sharding.routed - routed)
        changed += self.sharding.pop_own(MAX_POP_PER_RUN)
        if changed:
            self.analyse_metrics(changed, "arrival")
        if not self.sweep_todo and time.monotonic() >= self.next_sweep:
            self.next_sweep = time.monotonic() + self.settings.analyzer.interval
            everything = self.store.metrics()
            self.sweep_todo = self.sharding.mine(everything)
            self.counters.inc("sweep_runs")
            self._share(len(self.sweep_todo), len(everything))
            if self.detect is not None:
                self.detect.retain(set(self.sweep_todo))
        if self.sweep_todo:
            part, self.sweep_todo = self.sweep_todo[:SWEEP_SLICE], self.sweep_todo[SWEEP_SLICE:]
            self.analyse_metrics(part, "sweep")

    def _refresh_shares(self) -> None:
        """A member gone or come: sweep the metrics gained first; a member seen dead
        (it may have popped names of anyone's): sweep this member's whole share now."""
        before = self.sharding.recovered
        old, died = self.sharding.refresh()
        self.counters.inc("shard.recovered", self.sharding.recovered - before)
        if old is None and not died:
            return
        everything = self.store.metrics()
        mine = self.sharding.mine(everything)
        gained = self.sharding.acquired(old, mine) if old is not None else []
        if old is not None and self.detect is not None:
            # states of metrics now someone else's: saved for the new owner, then dropped
            kept = set(mine)
            lost = [m for m in old.mine(self.sharding.me, everything) if m not in kept]
            self.counters.inc("shard.states_handed_over", self.detect.flush(lost))
            self.detect.retain(kept)
        if died:
            first = set(gained)
            self.sweep_todo = gained + [m for m in mine if m not in first]
            self.next_sweep = time.monotonic() + self.settings.analyzer.interval
            self.counters.inc("sweep_runs")
        else:
            keep = set(mine)
            self.sweep_todo = gained + [m for m in self.sweep_todo if m in keep]
        self._share(len(mine), len(everything))
        self.counters.inc("shard.changes")
        self.counters.inc("shard.acquired", len(gained))
        self.log.info("members now %d%s; this analyzer owns %d metrics, %d gained",
                      len(self.sharding.members), f" ({len(died)} expired)" if died else "",
                      len(mine), len(gained))  # fmt: skip

    def _share(self, mine: int, total: int) -> None:
        self.share_info = {"members": len(self.sharding.members), "metrics": mine,
                           "total": total, "share": round(mine / total, 4) if total else None}  # fmt: skip
        self.counters.gauge("shard.metrics", mine)

    def leave(self) -> None:
        """A clean stop: leave first, so nobody routes to this member any more, then
        hand the names routed to it back to the changed set."""
        super().leave()
        given = self.sharding.give_back()
        if given:
            self.log.info("stop: %d routed metric names handed back to the changed set", given)

    def pop_changed(self) -> list[str]:
        names: list[str] = []
        key = self.keys.changed()
        while len(names) < MAX_POP_PER_RUN:
            popped = cast(list[bytes] | None, self.redis.spop(key, POP_BATCH))  # binary client
            if not popped:
                break
            names += [m.decode() for m in popped]
        # a name written again between two pops is popped twice: judge it once
        return list(dict.fromkeys(names))

    def analyse_metrics(self, metrics: list[str], kind: str) -> list[AnomalyEvent]:
        t0 = time.monotonic()
        if self.filter.active:
            metrics = [m for m in metrics if not self.filter.skipped(m)]
        if self.detect is not None:
            return self._detect_metrics(metrics, kind, t0)
        series = {m: s for m, s in self.store.read_many(metrics).items() if len(s)}
        now = self.clock()
        verdicts, counters = analyse(
            series, now, self.options, self.settings.analyzer.detect_counters, self.customs
        )
        publish_custom_counts(self.customs, self.counters, self.log)
        found = anomalous_verdicts(verdicts).items()  # no Verdict built for the others
        events = [self._event(m, v, now) for m, v in found if self._is_new_anomaly(m, v)]
        self._emit(events)
        self._count(kind, verdicts, len(counters), len(events), time.monotonic() - t0)
        return events

    def _emit(self, events: list[AnomalyEvent]) -> None:
        if not events:
            return
        self.heartbeats.prefetch([e.metric for e in events])
        pipe = self.redis.pipeline(transaction=False)
        for event in events:
            forward(pipe, self.keys, self.settings, event, self.heartbeats)
        pipe.execute()
        for event in events:
            self.emitted[event.metric] = event.timestamp
            self.log.info("anomaly: %s = %r at %d (%s)", event.metric, event.value,
                          event.timestamp, ", ".join(event.triggered))  # fmt: skip

    def _detect_metrics(self, metrics: list[str], kind: str, t0: float) -> list[AnomalyEvent]:
        """Default mode: the detector judges the new points; flagged points get the
        ensemble's votes on the series up to them as evidence."""
        assert self.detect is not None
        before = vars(self.detect.counts).copy()
        try:
            detections = self.detect.run(metrics)
        except PassFailed as failed:  # emit what the chunks before the failure found
            self._emit_detections(failed.found)
            raise cast(BaseException, failed.__cause__) from None
        events = self._emit_detections(detections)
        self._count_pass(kind, len(metrics), len(events), time.monotonic() - t0)
        for name, value in vars(self.detect.counts).items():
            self.counters.inc(f"detector.{name}", value - before[name])
        return events

    def _emit_detections(self, detections: list[Detection]) -> list[AnomalyEvent]:
        found = [d for d in detections if d.timestamp > self.emitted.get(d.metric, 0)]
        now = self.clock()
        history = self.store.read_many(sorted({d.metric for d in found})) if found else {}
        events = [self._detection_event(d, history.get(d.metric), now) for d in found]
        publish_custom_counts(self.customs, self.counters, self.log)
        self._emit(events)
        return events

    def _detection_event(self, d: Detection, series: Series | None, now: float) -> AnomalyEvent:
        """The detector's verdict first, then the ensemble's votes on the series up to
        the flagged point (when it is stored) as evidence."""
        assert self.detect is not None
        name = self.detect.detector.name
        run: tuple[str, ...] = (name,)
        triggered: tuple[str, ...] = (name,)
        scores = {name: d.score}
        if series is not None and len(series):
            upto = series.timestamps <= d.timestamp
            part = Series(series.timestamps[upto], series.values[upto])
            verdicts, _ = analyse({d.metric: part}, float(d.timestamp), self.options,
                                  self.settings.analyzer.detect_counters, self.customs)  # fmt: skip
            v = verdicts[d.metric]
            run += tuple(v.run)
            triggered += tuple(v.triggered)
            scores.update(v.scores)
        return self._new_event(d.metric, d.timestamp, d.value, run, triggered, scores, now)

    def _is_new_anomaly(self, metric: str, verdict: Verdict) -> bool:
        ts = verdict.timestamp
        return bool(verdict.anomalous) and ts is not None and ts > self.emitted.get(metric, 0)

    def _event(self, metric: str, verdict: Verdict, now: float) -> AnomalyEvent:
        assert verdict.timestamp is not None and verdict.value is not None  # anomalous
        return self._new_event(metric, verdict.timestamp, verdict.value, tuple(verdict.run),
                               tuple(verdict.triggered), verdict.scores, now)  # fmt: skip

    def _new_event(self, metric: str, timestamp: float, value: float, run: tuple[str, ...],
                   triggered: tuple[str, ...], scores: Mapping[str, float],
                   now: float) -> AnomalyEvent:  # fmt: skip
        return AnomalyEvent(
            metric=metric,
            timestamp=int(timestamp),
            value=float(value),
            source="analyzer",
            algorithms_run=run,
            triggered=triggered,
            scores={k: round(float(v), 6) for k, v in scores.items()},
            full_duration=self.settings.skyline.full_duration,
            detected_at=now,
            host=self.settings.host_name,
        )

    def _count(self, kind: str, verdicts: Mapping[str, Verdict], counters: int, anomalies: int,
               elapsed: float) -> None:  # fmt: skip
        c = self.counters
        self._count_pass(kind, len(verdicts), anomalies, elapsed)
        c.inc("counters_analysed", counters)
        skips, triggered = verdict_counts(verdicts)
        for skip, n in skips.items():
            c.inc(f"exceptions.{skip}", n)
        for algorithm, n in triggered.items():
            c.inc(f"anomaly_breakdown.{algorithm}", n)

    def _count_pass(self, kind: str, analysed: int, anomalies: int, elapsed: float) -> None:
        """What every pass counts, in either mode."""
        c = self.counters
        c.inc(f"{kind}_passes")
        c.inc("total_analyzed", analysed)
        c.inc("total_anomalies", anomalies)
        c.gauge(f"{kind}_run_time", round(elapsed, 4))
