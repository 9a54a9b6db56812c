"""Panorama: every anomaly and every verdict about it, durably in SQL.

Reads the anomalies and verdicts streams in the ``panorama`` consumer group and
acknowledges an entry only after its row is committed.  While SQL is down nothing is
acknowledged: entries wait in the stream and are re-read once SQL answers, so
nothing is lost.  Idempotent by event id (``anomalies.event_id`` is unique): an
entry seen twice is stored once.  A detection of a metric by the same daemon within
``[panorama] expiry`` of the last one stored is a repeat: counted, not stored --
unless that last one has since been trained as normal (a features profile was made
from it): the operator then wants to see the next detection and the verdict the new
profile gives it, so it is stored.
An entry the database refuses because of its data (``DataError``: a non-ASCII
metric name against the ASCII column, a value out of range) is dead-lettered:
counted (``dead_letters``), logged with the entry, acknowledged; it never blocks
the stream.

Each run also writes the label sets of new labelled metrics to SQL
(``skyline.events.panorama.labels``).
"""

from __future__ import annotations

from sqlalchemy import Engine, select
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session

from skyline.db.models import Anomaly, AnomalyVerdict, FeaturesProfile
from skyline.db.repo import commit_unless_stored, get_or_create_metric
from skyline.events.anomaly import AnomalyEvent, VerdictEvent
from skyline.events.panorama import labels
from skyline.events.stream_daemon import StreamDaemon
from skyline.store.datapoint import printable
from skyline.store.labels import LabelIndex

REPEAT_TTL = 86400
MAX_VERDICT_DELIVERIES = 5  # a verdict whose anomaly never appears is dropped after this


class Panorama(StreamDaemon):
    name = "panorama"

    def streams(self) -> list[str]:
        return [self.keys.anomalies_stream(), self.keys.verdicts_stream()]

    def prepare(self) -> None:
        self.engine: Engine = self.open_database()
        self.label_index = LabelIndex(self.redis, self.keys)

    def run_once(self) -> None:
        with self.recovering():
            entries = self.consumer.read(self.block_ms)
            # anomalies before verdicts, so a verdict finds its anomaly in the same batch
            entries.sort(key=lambda e: e[0] != self.keys.anomalies_stream())
            for stream, entry_id, fields in entries:
                if self._store(stream, entry_id, fields):
                    self.consumer.ack(stream, entry_id)
            self._sync_labels()
        self.counters.gauge("pending", self.consumer.pending_count())

    def _sync_labels(self) -> None:
        try:
            written = labels.sync(self.engine, self.label_index)
        except labels.Refused as exc:
            self.counters.inc("label_sets_refused", len(exc.metrics))
            self.log.warning("dropping label sets the database refused: %s", printable(exc, 400))
            return
        if written:
            self.counters.inc("label_sets_stored", written)

    def _store(self, stream: str, entry_id: bytes, fields: dict[bytes, bytes]) -> bool:
        """Persist one entry; True when it may be acknowledged."""
        try:
            if stream == self.keys.anomalies_stream():
                return self.store_anomaly(AnomalyEvent.from_fields(fields))
            return self.store_verdict(VerdictEvent.from_fields(fields), stream, entry_id)
        except ValueError as exc:
            self.counters.inc("malformed_entries")
            self.log.warning("dropping malformed entry %s on %s: %s", entry_id, stream, exc)
            return True
        except DataError as exc:  # the entry's data, not an outage: retrying cannot help
            self.counters.inc("dead_letters")
            self.log.warning(
                "dead-lettering entry %s on %s: the database refused its data (%s): %s",
                entry_id, stream, printable(exc.orig, 200), printable(fields, 400),
            )  # fmt: skip
            return True

    def store_anomaly(self, event: AnomalyEvent) -> bool:
        with Session(self.engine) as db:
            if db.scalar(select(Anomaly.id).where(Anomaly.event_id == event.id)) is not None:
                self.counters.inc("duplicates")
                return True
            metric = get_or_create_metric(db, event.metric)
            if self._is_repeat(db, metric.id, event):
                self.redis.set(self.keys.panorama_repeat(event.id), 1, ex=REPEAT_TTL)
                self.counters.inc("repeats")
                return True
            db.add(Anomaly(
                event_id=event.id, metric_id=metric.id, timestamp=event.timestamp,
                value=event.value, full_duration=event.full_duration, source=event.source,
                host=event.host, algorithms_run=list(event.algorithms_run),
                triggered_algorithms=list(event.triggered), scores=event.scores,
                verdict="anomalous",
            ))  # fmt: skip
            if not commit_unless_stored(db):  # stored meanwhile by another panorama
                self.counters.inc("duplicates")
                return True
        self.counters.inc("anomalies_stored")
        return True

    def _is_repeat(self, db: Session, metric_id: int, event: AnomalyEvent) -> bool:
        expiry = self.settings.panorama.expiry
        if not expiry:
            return False
        last = db.execute(
            select(Anomaly.id, Anomaly.timestamp)
            .where(Anomaly.metric_id == metric_id, Anomaly.source == event.source)
            .order_by(Anomaly.timestamp.desc())
            .limit(1)
        ).first()
        if last is None or not 0 <= event.timestamp - last.timestamp < expiry:
            return False
        trained = db.scalar(
            select(FeaturesProfile.id)
            .where(FeaturesProfile.anomaly_id == last.id, FeaturesProfile.deleted.is_(False))
            .limit(1)
        )
        return trained is None

    def store_verdict(self, verdict: VerdictEvent, stream: str, entry_id: bytes) -> bool:
        with Session(self.engine) as db:
            anomaly = db.scalars(
                select(Anomaly).where(Anomaly.event_id == verdict.event_id)
            ).first()
            if anomaly is None:
                return self._orphan_verdict(verdict, stream, entry_id)
            db.add(AnomalyVerdict(anomaly_id=anomaly.id, stage=verdict.stage, verdict=verdict.verdict,
                                  reason=verdict.reason or None, detail=verdict.detail or None))  # fmt: skip
            anomaly.verdict = verdict.verdict
            db.commit()
        self.counters.inc("verdicts_stored")
        return True

    def _orphan_verdict(self, verdict: VerdictEvent, stream: str, entry_id: bytes) -> bool:
        """A verdict whose anomaly is not stored: a repeat (drop it) or not yet stored
        (leave it pending; it is retried after claim_idle, and dropped after a few tries)."""
        if self.redis.exists(self.keys.panorama_repeat(verdict.event_id)):
            self.counters.inc("verdicts_of_repeats")
            return True
        if self.consumer.deliveries(stream, entry_id) >= MAX_VERDICT_DELIVERIES:
            self.counters.inc("verdicts_orphaned")
            self.log.warning("dropping verdict for unknown anomaly %s", verdict.event_id)
            return True
        return False
