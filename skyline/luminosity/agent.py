"""Luminosity: which other metrics moved with each anomaly (docs/luminosity.md).

Reads the anomalies stream in its own consumer group ``luminosity`` (panorama has
another group on the same stream, so both see every anomaly).  For each anomaly it
waits briefly for panorama's row (``Anomaly.event_id``), reads the window of every
other metric from the store, correlates (``skyline.luminosity.correlate``) and stores
the related metrics as ``Correlation`` rows of the anomaly.  An entry is acknowledged
only once its rows are committed, or when there is nothing to store: a malformed
entry, a repeat (panorama's ``panorama:repeat`` key), an anomaly not correlated
(window too short or flat, not alerting with ``alerting_only``), or one whose row has
not appeared after ``max_tries`` deliveries.  Idempotent: an anomaly that already has
correlations is not correlated again.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from skyline.alert_rules import matches, route
from skyline.daemon import OUTAGES, Daemon
from skyline.db.models import Anomaly, Correlation
from skyline.db.repo import get_or_create_metric
from skyline.events import AnomalyEvent
from skyline.luminosity.correlate import (
    Outcome,
    Params,
    correlate_window,
    merge,
    window_of,
)
from skyline.settings_luminosity import LuminositySection
from skyline.streams import StreamConsumer, consumer_name
from skyline.timeseries import TimeSeriesStore

READ_CHUNK = 1000  # metrics read and correlated at a time: bounds memory per anomaly
REPEAT = -1  # _wait_for_row: the anomaly is a repeat panorama did not store


def params_of(cfg: LuminositySection) -> Params:
    return Params(
        window=cfg.window, min_points=cfg.min_points, max_shift=cfg.max_shift,
        shift_impact=cfg.shift_impact, threshold=cfg.threshold, negative=cfg.negative,
        max_correlations=cfg.max_correlations,
    )  # fmt: skip


def correlate_anomaly(
    store: TimeSeriesStore, metric: str, at: int, names: Sequence[str], params: Params
) -> Outcome | None:
    """Read ``metric``'s window and every one of ``names``' series from the store, a
    chunk at a time (bounded memory), and correlate; None when the window is unusable."""
    anchor = store.read(metric)
    window = window_of((anchor.timestamps, anchor.values), at, params)
    if window is None:
        return None
    outcomes = []
    for i in range(0, len(names), READ_CHUNK):
        series = store.read_many(names[i : i + READ_CHUNK])
        others = [(n, s.timestamps, s.values) for n, s in series.items()]
        outcomes.append(correlate_window(window, others, params))
    return merge(outcomes, params)


class Luminosity(Daemon):
    name = "luminosity"
    interval = 0.0  # type: ignore[assignment]  # run_once blocks on the stream instead

    def setup(self) -> None:
        self.engine: Engine = self.open_database()
        cfg = self.settings.luminosity
        self.params = params_of(cfg)
        self.consumer = StreamConsumer(
            self.redis,
            [self.keys.anomalies_stream()],
            "luminosity",
            consumer_name(self.name),
            claim_idle_ms=cfg.claim_idle * 1000,
            count=10,
        )
        self.consumer.ensure_groups()

    def run_once(self) -> None:
        try:
            entries = self.consumer.read(block_ms=int(self.settings.luminosity.interval * 1000))
            for stream, entry_id, fields in entries:
                if self.stop_event.is_set():
                    break  # left pending: re-read after a restart or claimed by another
                if self.handle(stream, entry_id, fields):
                    self.consumer.ack(stream, entry_id)
        except Exception:
            self.consumer.recover()
            raise
        self.counters.gauge("pending", self.consumer.pending_count())

    def handle(self, stream: str, entry_id: bytes, fields: dict[bytes, bytes]) -> bool:
        """Correlate one anomaly entry; True when it may be acknowledged."""
        try:
            event = AnomalyEvent.from_fields(fields)
        except ValueError as exc:
            self.counters.inc("skipped.malformed")
            self.log.warning("dropping malformed entry %s: %s", entry_id, str(exc)[:200])
            return True
        if (
            self.settings.luminosity.alerting_only
            and not route(self.settings.alerts, event.metric).alerting
        ):
            self.counters.inc("skipped.not_alerting")
            return True
        anomaly_id = self._wait_for_row(event)
        if anomaly_id == REPEAT:
            self.counters.inc("skipped.repeat")
            return True
        if anomaly_id is None:
            return self._no_row(event, stream, entry_id)
        if self._correlated_before(anomaly_id):
            self.counters.inc("duplicates")
            return True
        t0 = time.monotonic()
        try:
            outcome = self.correlate(event)
        except OUTAGES:
            raise  # Redis or SQL went away: the entry stays pending, the daemon retries
        except Exception:  # a bug or data no one foresaw: must not block the stream
            self.counters.inc("skipped.failed")
            self.log.exception("correlating %s failed; dropped", event.id)
            return True
        self.counters.inc("correlate_time", time.monotonic() - t0)
        if outcome is None:
            self.counters.inc("skipped.no_window")
            return True
        self.counters.inc("anomalies")
        self._count(outcome)
        self._store(anomaly_id, outcome)
        return True

    def _wait_for_row(self, event: AnomalyEvent) -> int | None:
        """The anomaly's row id, REPEAT, or None when not stored within ``row_wait``."""
        deadline = time.monotonic() + self.settings.luminosity.row_wait
        while True:
            with Session(self.engine) as db:
                row = db.scalar(select(Anomaly.id).where(Anomaly.event_id == event.id))
            if row is not None:
                return int(row)
            if self.redis.exists(self.keys.panorama_repeat(event.id)):
                return REPEAT
            if time.monotonic() >= deadline or self.stop_event.wait(0.1):
                return None

    def _no_row(self, event: AnomalyEvent, stream: str, entry_id: bytes) -> bool:
        """Leave the entry pending (tried again after claim_idle) up to ``max_tries``."""
        info = self.redis.xpending_range(stream, "luminosity", min=entry_id, max=entry_id, count=1)
        if info and info[0]["times_delivered"] >= self.settings.luminosity.max_tries:
            self.counters.inc("skipped.no_anomaly_row")
            self.log.warning("no anomaly row for %s after %d tries; dropped",
                             event.id, info[0]["times_delivered"])  # fmt: skip
            return True
        self.counters.inc("waiting_for_row")
        return False

    def _correlated_before(self, anomaly_id: int) -> bool:
        with Session(self.engine) as db:
            found = db.scalar(
                select(Correlation.id).where(Correlation.anomaly_id == anomaly_id).limit(1)
            )
        return found is not None

    def candidates(self, metric: str) -> list[str]:
        """The metrics compared with ``metric``: namespaces, then the max_metrics cap."""
        cfg = self.settings.luminosity
        names = [n for n in self.store.metrics() if n != metric]
        if cfg.namespaces:
            names = [n for n in names if any(matches(p, n) for p in cfg.namespaces)]
        if len(names) > cfg.max_metrics:
            self.counters.inc("skipped.max_metrics", len(names) - cfg.max_metrics)
            names = names[: cfg.max_metrics]
        return names

    def correlate(self, event: AnomalyEvent) -> Outcome | None:
        names = self.candidates(event.metric)
        return correlate_anomaly(self.store, event.metric, event.timestamp, names, self.params)

    def _count(self, outcome: Outcome) -> None:
        self.counters.inc("metrics_compared", outcome.compared)
        self.counters.inc("skipped.flat", outcome.flat)
        self.counters.inc("skipped.incomplete", outcome.incomplete)

    def _store(self, anomaly_id: int, outcome: Outcome) -> None:
        if not outcome.correlations:
            return
        with Session(self.engine) as db:
            for c in outcome.correlations:
                metric = get_or_create_metric(db, c.metric)
                db.add(Correlation(
                    anomaly_id=anomaly_id, metric_id=metric.id, coefficient=c.coefficient,
                    shifted=c.shift_seconds, shifted_coefficient=c.shifted_coefficient,
                ))  # fmt: skip
            try:
                db.commit()
            except IntegrityError:  # stored meanwhile by another luminosity
                db.rollback()
                self.counters.inc("duplicates")
                return
        self.counters.inc("correlations", len(outcome.correlations))
