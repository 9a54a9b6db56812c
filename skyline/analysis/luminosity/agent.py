"""Luminosity: which other metrics moved with each anomaly (docs/luminosity.md).

Reads the anomalies stream in its own consumer group ``luminosity`` (panorama has
another group on the same stream, so both see every anomaly).  For each anomaly it
waits briefly for panorama's row (``Anomaly.event_id``), reads the window of every
other metric from the store, correlates (``skyline.analysis.luminosity.correlate``) and stores
the related metrics as ``Correlation`` rows of the anomaly.  An entry is acknowledged
only once its rows are committed, or when there is nothing to store: a malformed
entry, a repeat (panorama's ``panorama:repeat`` key), an anomaly not correlated
(window too short or flat, not alerting with ``alerting_only``), one whose handling
raised an error that is not an outage (``skipped.failed``), or one whose row has not
appeared after ``max_tries`` deliveries (``XPENDING``'s count).  So no entry blocks
the stream; only an outage (Redis or SQL gone) leaves it pending for a retry.
Idempotent: an anomaly that already has correlations is not correlated again.

Other metrics are read by their tails (``read_lookback``): only the records that
cover the anchor window and its one-span lookback, not each metric's whole day.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from skyline.analysis.luminosity.correlate import (
    Outcome,
    Params,
    correlate_window,
    lookback_start,
    merge,
    window_of,
)
from skyline.db.models import Anomaly, Correlation
from skyline.db.repo import commit_unless_stored, get_or_create_metric
from skyline.events.anomaly import AnomalyEvent
from skyline.events.rules import matches, route
from skyline.events.stream_daemon import StreamDaemon
from skyline.runtime.daemon import OUTAGES
from skyline.settings.luminosity import LuminositySection
from skyline.store.timeseries import Series, TimeSeriesStore

READ_CHUNK = 1000  # metrics read and correlated at a time: bounds memory per anomaly
REPEAT = -1  # _wait_for_row: the anomaly is a repeat panorama did not store
TAIL_SLACK = 1.5  # records read per record the lookback needs at the estimated resolution
TAIL_EXTRA = 16  # and a few more: jitter, duplicates, a rewrite's header


def params_of(cfg: LuminositySection) -> Params:
    return Params(
        window=cfg.window, min_points=cfg.min_points, max_shift=cfg.max_shift,
        shift_impact=cfg.shift_impact, threshold=cfg.threshold, negative=cfg.negative,
        max_correlations=cfg.max_correlations,
    )  # fmt: skip


def correlate_anomaly(
    store: TimeSeriesStore, metric: str, at: int, names: Sequence[str], params: Params
) -> Outcome | None:
    """Read ``metric``'s window and, a chunk at a time (bounded memory), the recent end
    of every one of ``names``' series, and correlate; None when the window is unusable."""
    anchor = store.read(metric)
    window = window_of((anchor.timestamps, anchor.values), at, params)
    if window is None:
        return None
    newest = int(anchor.timestamps[-1])
    outcomes = []
    for i in range(0, len(names), READ_CHUNK):
        series = read_lookback(store, names[i : i + READ_CHUNK], window[0], newest)
        others = [(n, s.timestamps, s.values) for n, s in series.items()]
        outcomes.append(correlate_window(window, others, params))
    return merge(outcomes, params)


def tail_records(seconds: float, step: float) -> int:
    """Records that cover ``seconds`` at one point per ``step`` seconds, with slack."""
    return int(max(seconds, 0) / max(step, 1.0) * TAIL_SLACK) + TAIL_EXTRA


def read_lookback(
    store: TimeSeriesStore, names: Sequence[str], grid: np.ndarray, newest: int
) -> dict[str, Series]:
    """``names``' series, each holding at least every point from ``lookback_start(grid)``
    on (all ``resample`` uses), read by tails rather than whole:

    1. a tail of the records that cover ``lookback_start .. newest`` (the anchor's
       newest point) at the anchor's resolution;
    2. a metric whose tail does not reach back to the lookback start (a finer
       resolution, newer data): a tail sized at its own resolution, seen in step 1;
    3. one still short (it started later, has gaps, or is empty) or whose first tail
       was not full (the whole series already, or many duplicates): read whole.

    A tail "reaches back" when its oldest point is at or before the lookback start.
    Writers append in time order but for late points: a window point appended before
    an older point that is in the tail would be missed (``read_tails``); roomba's
    rewrites sort the series again.
    """
    base = lookback_start(grid)
    step = (int(grid[-1]) - int(grid[0])) / max(len(grid) - 1, 1)
    first = tail_records(max(newest, int(grid[-1])) - base, step)
    got = store.read_tails(names, first)
    by_size: dict[int, list[str]] = {}
    whole: list[str] = []
    for name, s in got.items():
        if len(s) and s.timestamps[0] <= base:
            continue
        size = _own_tail(s, base, first)
        (by_size.setdefault(size, []) if size > first else whole).append(name)
    for size, chunk in by_size.items():
        for name, s in store.read_tails(chunk, size).items():
            if len(s) and s.timestamps[0] <= base:
                got[name] = s
            else:
                whole.append(name)
    if whole:
        got.update(store.read_many(whole))
    return got


def _own_tail(s: Series, base: int, asked: int) -> int:
    """Records (a power of two, so few sizes) covering ``base`` .. the series' newest
    point at its own resolution; 0 (read it whole) when its tail of ``asked`` records
    was not full, less one for a rewrite's header: it was the whole series already, or
    one full of duplicates."""
    if len(s) < max(asked - 1, 2):
        return 0
    t = s.timestamps
    n = tail_records(int(t[-1]) - base, (int(t[-1]) - int(t[0])) / (len(t) - 1))
    return 1 << (n - 1).bit_length()


class Luminosity(StreamDaemon):
    name = "luminosity"
    read_count = 10

    def streams(self) -> list[str]:
        return [self.keys.anomalies_stream()]

    def prepare(self) -> None:
        self.engine: Engine = self.open_database()
        self.params = params_of(self.settings.luminosity)

    def run_once(self) -> None:
        with self.recovering():
            entries = self.consumer.read(self.block_ms)
            for stream, entry_id, fields in entries:
                if self.stop_event.is_set():
                    break  # left pending: re-read after a restart or claimed by another
                self.process(stream, entry_id, fields)
        self.counters.gauge("pending", self.consumer.pending_count())

    def process(self, stream: str, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        """Handle one entry and acknowledge it unless it must be tried again.

        An error that is not an outage (a bad entry, a bug, data no one foresaw) is
        logged, counted ``skipped.failed`` and the entry acknowledged: the correlation
        is lost, the stream is not blocked.  An outage leaves it pending (the daemon
        backs off and retries).  An entry whose row has not appeared is left pending
        until its ``max_tries``-th delivery (``XPENDING``, so counted across restarts
        and consumers), then acknowledged and counted ``skipped.no_anomaly_row``."""
        deliveries = self.consumer.deliveries(stream, entry_id)
        try:
            done = self.handle(entry_id, fields)
        except OUTAGES:
            raise
        except Exception:
            self.counters.inc("skipped.failed")
            self.log.exception("entry %r (delivery %d) failed; dropped", entry_id, deliveries)
            done = True
        if not done and deliveries >= self.settings.luminosity.max_tries:
            self.counters.inc("skipped.no_anomaly_row")
            self.log.warning("no anomaly row for entry %r after %d tries; dropped",
                             entry_id, deliveries)  # fmt: skip
            done = True
        if done:
            self.consumer.ack(stream, entry_id)
        else:
            self.counters.inc("waiting_for_row")

    def handle(self, entry_id: bytes, fields: dict[bytes, bytes]) -> bool:
        """Correlate one anomaly entry; True when done (it may be acknowledged), False
        when its anomaly row has not appeared yet.  Errors propagate to ``process``."""
        try:
            event = AnomalyEvent.from_fields(fields)
        except ValueError as exc:
            self.counters.inc("skipped.malformed")
            self.log.warning("dropping malformed entry %s: %s", entry_id, str(exc)[:200])
            return True
        if (
            self.settings.luminosity.alerting_only
            and not route(self.settings.alerts, event.metric, event.labels).alerting
        ):
            self.counters.inc("skipped.not_alerting")
            return True
        anomaly_id = self._wait_for_row(event)
        if anomaly_id == REPEAT:
            self.counters.inc("skipped.repeat")
            return True
        if anomaly_id is None:
            return False
        if self._correlated_before(anomaly_id):
            self.counters.inc("duplicates")
            return True
        t0 = time.monotonic()
        outcome = self.correlate(event)
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
            if not commit_unless_stored(db):  # stored meanwhile by another luminosity
                self.counters.inc("duplicates")
                return
        self.counters.inc("correlations", len(outcome.correlations))
