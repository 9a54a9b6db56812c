"""The boundary daemon: [[boundary]] thresholds and drop-off rules, on each new datapoint.

How it learns of new data without stealing the analyzer's: the analyzer SPOPs the
``changed`` set, so boundary cannot use it.  Instead boundary keeps the list of
metrics some rule applies to (re-read from the ``metrics`` set every
``[boundary_daemon] metrics_refresh`` seconds, the rule matching cached per name) and
each run reads only the bytes appended to those series since its last read
(``TimeSeriesStore.read_since_many``: ``read_since`` for all of them in one
pipeline).  Each new datapoint is judged once by each of the
metric's effective rules (``skyline.events.boundary_rules``); metrics no rule matches are
never read.  See docs/boundary.md for the trade-offs.

A breach adds one to the (rule, metric) count in Redis; a point that does not breach
(a skip included) resets it.  When a count reaches the rule's alert_threshold the
datapoint is an anomaly: an ``AnomalyEvent`` with source "boundary" is handed to
``skyline.events.routing.forward`` (anomalies stream for panorama, alerts stream for the
alerters, which route it by the boundary rules).  At most one event per metric per
run: the newest triggering point.

Counters: checked, breaches, alerts, skipped_<guard> (skipped_min_average,
skipped_too_short, ...), dropped_nonfinite, late_points, metrics_vanished,
metric_errors; gauges metrics_watched, rules_matching_nothing.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import redis

from skyline.analysis.boundary import breaches
from skyline.analysis.boundary.algorithms import judge
from skyline.analysis.boundary.tail import Tail
from skyline.events.anomaly import AnomalyEvent
from skyline.events.boundary_rules import Applied, effective_rules
from skyline.events.routing import Heartbeats, forward
from skyline.runtime.daemon import OUTAGES, Daemon
from skyline.store.labels import LabelIndex
from skyline.store.timeseries import Cursor


@dataclass
class Watched:
    rules: list[Applied]
    tail: Tail = field(default_factory=Tail)
    counts: dict[int, breaches.Count] | None = None  # loaded from Redis at first sight


@dataclass
class Hit:
    """The newest point of a run at which some rule reached its alert threshold."""

    index: int
    triggered: list[str]
    scores: dict[str, float]


class Boundary(Daemon):
    name = "boundary"
    watched: dict[str, Watched]
    matching: dict[str, list[Applied]]  # metric name -> its effective rules

    @property
    def interval(self) -> float:
        return self.settings.boundary_daemon.interval

    def reloaded(self) -> None:
        """New [[boundary]] rules (SIGHUP): every metric is matched again."""
        self.rules = list(self.settings.boundary)
        self.matching, self.watched = {}, {}  # every metric is read afresh under the new rules
        self.next_refresh = 0.0

    def setup(self) -> None:
        self.cfg = self.settings.boundary_daemon
        self.rules = list(self.settings.boundary)
        self.heartbeats = Heartbeats(self.redis, self.keys)
        self.label_index = LabelIndex(self.redis, self.keys)
        self.watched = {}
        self.matching = {}
        self.next_refresh = 0.0
        if not self.rules:
            self.log.warning("no [[boundary]] rules configured: nothing to watch")

    def run_once(self) -> None:
        if time.monotonic() >= self.next_refresh:
            self.next_refresh = time.monotonic() + self.cfg.metrics_refresh
            self.refresh()
        pipe = self.redis.pipeline(transaction=False)  # every count and event of the run
        judged: list[str] = []
        try:
            events = self._judge_all(pipe, judged)
            pipe.execute()
        except OUTAGES:
            # counts and events of this run may be lost: forget what was judged, so the
            # next run starts again from the counts stored in Redis (re-emitted events
            # are recognised downstream by their id)
            for metric in judged:
                if metric in self.watched:
                    self.watched[metric] = Watched(self.watched[metric].rules)
            raise
        for event in events:
            self.log.info("boundary anomaly: %s = %r at %d (%s)", event.metric, event.value,
                          event.timestamp, ", ".join(event.triggered))  # fmt: skip
        self.counters.inc("alerts", len(events))

    def _judge_all(self, pipe: redis.client.Pipeline, judged: list[str]) -> list[AnomalyEvent]:
        """Read every watched metric's new data and judge it; ``judged`` collects the
        names whose in-memory state moved on."""
        events = []
        cursors = {m: w.tail.cursor for m, w in self.watched.items()}
        for metric, records, cursor, whole in self.store.read_since_many(cursors):
            judged.append(metric)
            try:
                event = self.check(metric, records, cursor, whole, pipe)
            except OUTAGES:
                raise
            except Exception:  # one metric's bug must not stop the others being judged
                self.counters.inc("metric_errors")
                self.log.exception("judging %s failed; it is read afresh next run", metric)
                self.watched[metric] = Watched(self.watched[metric].rules)
                continue
            if event is not None:
                events.append(event)
                forward(pipe, self.keys, self.settings, event, self.heartbeats)
        return events

    def refresh(self) -> None:
        """Re-read the metric names; watch those some rule applies to."""
        names = self.store.metrics()
        known = self.matching
        new = [n for n in names if n not in known]
        sets = self.label_index.get_many(new) if any(r.labels for r in self.rules) else {}
        matching = {n: known[n] if n in known else effective_rules(self.rules, n, sets.get(n))
                    for n in names}  # fmt: skip
        self.matching = matching
        # a watched metric no longer listed was deleted before a read noticed (check())
        self.counters.inc("metrics_vanished", sum(1 for n in self.watched if n not in matching))
        self.watched = {n: self.watched.get(n) or Watched(r) for n, r in matching.items() if r}
        used = {a.index for rules in matching.values() for a in rules}
        self.counters.gauge("metrics_watched", len(self.watched))
        self.counters.gauge("rules_matching_nothing", len(self.rules) - len(used))

    def check(self, metric: str, records: np.ndarray, cursor: Cursor, whole: bool,
              pipe: redis.client.Pipeline) -> AnomalyEvent | None:  # fmt: skip
        """Judge the metric's new datapoints; queue its counts on ``pipe``."""
        w = self.watched[metric]
        w.tail.cursor = cursor
        if whole and not len(records):  # deleted (or emptied) while watched
            self.counters.inc("metrics_vanished")
            del self.watched[metric]
            self.matching.pop(metric, None)
            return None
        if w.counts is None:
            w.counts = breaches.load(self.redis, self.keys, metric, w.rules)
            seen = [c.last_ts for c in w.counts.values() if c.last_ts is not None]
            w.tail.last_judged = max(seen) if seen else None
        keep = max([self.cfg.history] + [a.rule.min_average_seconds for a in w.rules])
        got = w.tail.ingest(records, whole, keep)
        self.counters.inc("dropped_nonfinite", got.nonfinite)
        self.counters.inc("late_points", got.late)
        if not got.new:
            return None
        hit = None
        for i in got.new:
            hit = self._judge_point(w, i) or hit
        newest = int(w.tail.t[got.new[-1]])
        w.tail.last_judged = newest
        for applied in w.rules:
            count = w.counts[applied.index]
            count.last_ts = newest
            breaches.save(pipe, self.keys, metric, applied, count)
        return self._event(metric, w, hit) if hit else None

    def _judge_point(self, w: Watched, i: int) -> Hit | None:
        t, v = w.tail.t[: i + 1], w.tail.v[: i + 1]
        triggered: list[str] = []
        scores: dict[str, float] = {}
        assert w.counts is not None
        for applied in w.rules:
            rule, count = applied.rule, w.counts[applied.index]
            j = judge(rule.algorithm, t, v, rule.limit, rule.min_average, rule.min_average_seconds)
            self.counters.inc("checked")
            if j.skip:
                self.counters.inc(f"skipped_{j.skip}")
            count.breaches = count.breaches + 1 if j.breach else 0
            if not j.breach:
                continue
            self.counters.inc("breaches")
            if count.breaches >= rule.alert_threshold:
                triggered.append(rule.algorithm)
                scores.update({f"{rule.algorithm}.score": j.score, f"{rule.algorithm}.limit": j.limit,
                               f"{rule.algorithm}.breaches": float(count.breaches)})  # fmt: skip
        if not triggered:
            return None
        return Hit(i, triggered, {k: round(x, 6) for k, x in scores.items() if math.isfinite(x)})

    def _event(self, metric: str, w: Watched, hit: Hit) -> AnomalyEvent:
        return AnomalyEvent(
            metric=metric,
            timestamp=int(w.tail.t[hit.index]),
            value=float(w.tail.v[hit.index]),
            source="boundary",
            algorithms_run=tuple(a.rule.algorithm for a in w.rules),
            triggered=tuple(hit.triggered),
            scores=hit.scores,
            full_duration=self.settings.skyline.full_duration,
            detected_at=self.clock(),
            host=self.settings.host_name,
        )
