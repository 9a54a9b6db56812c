"""SQL models: the one definition of Skyline's relational schema.

Normalised (no per-metric tables, no comma-separated id lists).  Every point in
time is UTC epoch seconds in a BIGINT column; there are no DATETIME/TIMESTAMP
columns.  Every constraint and index gets a deterministic name from
``NAMING_CONVENTION`` so migrations and ``sql/skyline.sql`` are reproducible.

Deleting an anomaly removes its verdict trail, labels and correlations and
detaches (SET NULL) alert log entries, profiles and matches that refer to it, so
old anomalies can be pruned; metrics are never deleted, only marked inactive.

The initial migration (``migrations/versions/0001_initial.py``) restates this
schema explicitly; a test keeps the two equal.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Table options on MySQL/MariaDB.  Binary collation gives the same
#: (case-sensitive) comparisons as SQLite.
MYSQL_TABLE_OPTIONS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}

#: Metric names are ASCII; on MySQL/MariaDB an ascii column keeps the unique
#: index on 1024 characters within InnoDB's 3072-byte key limit.
METRIC_NAME_TYPE = String(1024).with_variant(
    mysql.VARCHAR(1024, charset="ascii", collation="ascii_bin"), "mysql", "mariadb"
)

ROLES = ("viewer", "operator", "admin")
MATCH_TYPES = ("features", "motif")
STAGES = ("analyzer", "mirage", "ionosphere", "boundary", "alerters", "panorama")
VERDICTS = ("pending", "anomalous", "not_anomalous", "alerted", "expired")
ALERT_STATUSES = ("sent", "failed", "retrying", "suppressed", "muted")
LABELS = ("true_positive", "false_positive")


def now() -> int:
    """The current time as UTC epoch seconds, the unit of every time column."""
    return int(time.time())


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _table_args(*items: Any) -> tuple[Any, ...]:
    return (*items, dict(MYSQL_TABLE_OPTIONS))


def _epoch(*, index: bool = False) -> Any:
    """A point in time (epoch seconds); nullability follows the annotation."""
    return mapped_column(BigInteger, index=index)


def _created_at() -> Any:
    return mapped_column(BigInteger, default=now)


def _flag(default: bool) -> Any:
    return mapped_column(Boolean, default=default, server_default=text("1" if default else "0"))


def _count(default: int = 0) -> Any:
    return mapped_column(Integer, default=default, server_default=text(str(default)))


def _fk(target: str, *, ondelete: str | None = None, index: bool = True) -> Any:
    return mapped_column(ForeignKey(target, ondelete=ondelete), index=index)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {float: Double(), str: String(255)}


class Metric(Base):
    __tablename__ = "metrics"
    __table_args__ = _table_args()

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(METRIC_NAME_TYPE, unique=True)
    created_at: Mapped[int] = _created_at()
    inactive: Mapped[bool] = _flag(False)
    inactive_at: Mapped[int | None] = _epoch()
    ionosphere_enabled: Mapped[bool] = _flag(False)
    learn_full_duration_days: Mapped[int] = _count(30)
    learn_valid_ts_older_than: Mapped[int] = _count(3661)
    max_generations: Mapped[int] = _count(5)
    max_percent_diff_from_origin: Mapped[float] = mapped_column(
        default=7.0, server_default=text("7")
    )


class MetricLabel(Base):
    """One label of a labelled metric (skyline.store.labels): the label set as it was
    sent, ``__name__`` among them; the metric's ``name`` is its flattened series name."""

    __tablename__ = "metric_labels"
    __table_args__ = _table_args(Index("ix_metric_labels_name_value", "name", "value"))

    metric_id: Mapped[int] = mapped_column(
        ForeignKey("metrics.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(String(512))


class Anomaly(Base):
    __tablename__ = "anomalies"
    __table_args__ = _table_args(
        Index("ix_anomalies_metric_id_timestamp", "metric_id", "timestamp"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    metric_id: Mapped[int] = _fk("metrics.id", index=False)
    timestamp: Mapped[int] = _epoch(index=True)
    value: Mapped[float]
    full_duration: Mapped[int]
    source: Mapped[str] = mapped_column(String(32))
    host: Mapped[str] = mapped_column(default="")
    algorithms_run: Mapped[list[str]] = mapped_column(JSON, default=list)
    triggered_algorithms: Mapped[list[str]] = mapped_column(JSON, default=list)
    scores: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    verdict: Mapped[str] = mapped_column(String(32), default="pending")
    end_timestamp: Mapped[int | None] = _epoch()
    created_at: Mapped[int] = _created_at()
    event_id: Mapped[str] = mapped_column(String(128), unique=True)

    metric: Mapped[Metric] = relationship()
    verdicts: Mapped[list[AnomalyVerdict]] = relationship(
        back_populates="anomaly",
        order_by="AnomalyVerdict.id",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class AnomalyVerdict(Base):
    """One step of an anomaly's verdict trail."""

    __tablename__ = "anomaly_verdicts"
    __table_args__ = _table_args()

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    anomaly_id: Mapped[int] = _fk("anomalies.id", ondelete="CASCADE")
    stage: Mapped[str] = mapped_column(String(32))
    verdict: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    created_at: Mapped[int] = _created_at()

    anomaly: Mapped[Anomaly] = relationship(back_populates="verdicts")


class User(Base):
    __tablename__ = "users"
    __table_args__ = _table_args(CheckConstraint(_in("role", ROLES), name="role"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(unique=True)
    password_hash: Mapped[str]
    role: Mapped[str] = mapped_column(String(16), default="viewer")
    created_at: Mapped[int] = _created_at()
    disabled: Mapped[bool] = _flag(False)


class AuditEntry(Base):
    """One change an administrator or operator made in the webapp (a user, a token, a test
    alert): who, what, to what, from where.  Never holds a password or a token."""

    __tablename__ = "audit_log"
    __table_args__ = _table_args()

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now, index=True)
    actor_id: Mapped[int | None] = _fk("users.id", ondelete="SET NULL")
    actor: Mapped[str] = mapped_column(String(64))  # the name, kept if the user goes
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(255))
    detail: Mapped[str | None] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(String(64))


class Label(Base):
    """An operator's judgement of an anomaly (the newest one counts)."""

    __tablename__ = "labels"
    __table_args__ = _table_args()

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    anomaly_id: Mapped[int] = _fk("anomalies.id", ondelete="CASCADE")
    label: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int | None] = _fk("users.id", ondelete="SET NULL")
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[int] = _created_at()


class ApiToken(Base):
    __tablename__ = "api_tokens"
    __table_args__ = _table_args()

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = _fk("users.id", ondelete="CASCADE")
    name: Mapped[str]
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[int] = _created_at()
    last_used_at: Mapped[int | None] = _epoch()
    revoked_at: Mapped[int | None] = _epoch()


class FluxKey(Base):
    """An API key of the flux HTTP ingest, allowed to write under ``namespace``."""

    __tablename__ = "flux_keys"
    __table_args__ = _table_args()

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(128), unique=True)
    namespace: Mapped[str] = mapped_column(String(1024))
    description: Mapped[str] = mapped_column(default="")
    created_at: Mapped[int] = _created_at()
    revoked_at: Mapped[int | None] = _epoch()


class Feature(Base):
    """A tsfresh feature name with a stable id assigned by Skyline (only ever extended)."""

    __tablename__ = "features"
    __table_args__ = _table_args()

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(unique=True)


class FeaturesProfile(Base):
    """A trained profile of what is NOT anomalous for one metric (ionosphere)."""

    __tablename__ = "features_profiles"
    __table_args__ = _table_args()

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    metric_id: Mapped[int] = _fk("metrics.id")
    anomaly_id: Mapped[int | None] = _fk("anomalies.id", ondelete="SET NULL")
    anomaly_timestamp: Mapped[int] = _epoch()
    full_duration: Mapped[int]
    resolution: Mapped[int]
    enabled: Mapped[bool] = _flag(True)
    deleted: Mapped[bool] = _flag(False)
    tsfresh_version: Mapped[str] = mapped_column(String(32))
    calc_time: Mapped[float]
    features_count: Mapped[int]
    features_sum: Mapped[float]
    parent_id: Mapped[int | None] = _fk("features_profiles.id", ondelete="SET NULL")
    generation: Mapped[int] = _count()
    matched_count: Mapped[int] = _count()
    last_matched: Mapped[int | None] = _epoch()
    checked_count: Mapped[int] = _count()
    last_checked: Mapped[int | None] = _epoch()
    motif_matched_count: Mapped[int] = _count()
    motif_last_matched: Mapped[int | None] = _epoch()
    validated: Mapped[bool] = _flag(False)
    learn: Mapped[bool] = _flag(False)  # may learn from later anomalies (0002)
    label: Mapped[str | None]
    user_id: Mapped[int | None] = _fk("users.id", ondelete="SET NULL")
    created_at: Mapped[int] = _created_at()

    metric: Mapped[Metric] = relationship()
    features: Mapped[list[ProfileFeature]] = relationship(
        order_by="ProfileFeature.feature_id", cascade="all, delete-orphan", passive_deletes=True
    )
    series: Mapped[list[ProfileSeries]] = relationship(
        order_by="ProfileSeries.timestamp", cascade="all, delete-orphan", passive_deletes=True
    )
    motifs: Mapped[list[Motif]] = relationship(
        order_by="Motif.id", cascade="all, delete-orphan", passive_deletes=True
    )


class ProfileFeature(Base):
    """The value of one feature in one profile."""

    __tablename__ = "profile_features"
    __table_args__ = _table_args()

    profile_id: Mapped[int] = mapped_column(
        ForeignKey("features_profiles.id", ondelete="CASCADE"), primary_key=True
    )
    feature_id: Mapped[int] = mapped_column(ForeignKey("features.id"), primary_key=True, index=True)
    value: Mapped[float]

    feature: Mapped[Feature] = relationship()


class ProfileSeries(Base):
    """One datapoint of the time series a profile was trained on."""

    __tablename__ = "profile_series"
    __table_args__ = _table_args()

    profile_id: Mapped[int] = mapped_column(
        ForeignKey("features_profiles.id", ondelete="CASCADE"), primary_key=True
    )
    timestamp: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    value: Mapped[float]


class Motif(Base):
    """A subsequence ``[start_index, start_index + size)`` of a profile's series."""

    __tablename__ = "motifs"
    __table_args__ = _table_args(UniqueConstraint("profile_id", "start_index", "size"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    profile_id: Mapped[int] = _fk("features_profiles.id", ondelete="CASCADE", index=False)
    start_index: Mapped[int]
    size: Mapped[int]
    distance_max: Mapped[float | None]
    created_at: Mapped[int] = _created_at()


class ProfileMatch(Base):
    """An anomaly matched (so silenced) by a features profile or one of its motifs."""

    __tablename__ = "profile_matches"
    __table_args__ = _table_args(CheckConstraint(_in("match_type", MATCH_TYPES), name="match_type"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    profile_id: Mapped[int] = _fk("features_profiles.id", ondelete="CASCADE")
    anomaly_id: Mapped[int | None] = _fk("anomalies.id", ondelete="SET NULL")
    # the matched event's id: the anomaly row may not be stored yet (0002)
    event_id: Mapped[str | None] = mapped_column(String(128), index=True)
    metric_timestamp: Mapped[int] = _epoch()
    match_type: Mapped[str] = mapped_column(String(16))
    distance: Mapped[float | None]
    features_sum: Mapped[float | None]
    common_features_count: Mapped[int | None]
    validated: Mapped[bool] = _flag(False)
    created_at: Mapped[int] = _created_at()


class LearnEvaluated(Base):
    """An anomaly ionosphere's learning has evaluated (0003): it is not evaluated
    again, across restarts; rows of anomalies older than the lookback are pruned."""

    __tablename__ = "learn_evaluated"
    __table_args__ = _table_args()

    anomaly_id: Mapped[int] = mapped_column(
        ForeignKey("anomalies.id", ondelete="CASCADE"), primary_key=True
    )
    anomaly_timestamp: Mapped[int] = _epoch(index=True)
    evaluated_at: Mapped[int] = _created_at()


class LearnWindow(Base):
    """The raw window of an anomaly ionosphere did not match, for a metric with a learn
    profile of that full_duration (0003): learning runs later than the raw store keeps
    the window's start, so the window is kept here (as float64 [timestamp, value]
    pairs) until the learning lookback has passed."""

    __tablename__ = "learn_windows"
    __table_args__ = _table_args()

    event_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    full_duration: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    metric_id: Mapped[int] = _fk("metrics.id", ondelete="CASCADE")
    timestamp: Mapped[int] = _epoch(index=True)
    points: Mapped[bytes] = mapped_column(
        LargeBinary().with_variant(mysql.MEDIUMBLOB(), "mysql", "mariadb")
    )


class LearnOriginFeature(Base):
    """One feature of an origin (generation-0 learn) profile over the learning window
    ``duration`` ending at its anomaly (0004): computed once, while the history still
    covers that window, and kept, since the rollups soon no longer reach its start."""

    __tablename__ = "learn_origin_features"
    __table_args__ = _table_args()

    profile_id: Mapped[int] = mapped_column(
        ForeignKey("features_profiles.id", ondelete="CASCADE"), primary_key=True
    )
    duration: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    feature_id: Mapped[int] = mapped_column(ForeignKey("features.id"), primary_key=True, index=True)
    value: Mapped[float]


class AlertLog(Base):
    """One delivery attempt of an alert on one channel."""

    __tablename__ = "alert_log"
    __table_args__ = _table_args()

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(255), index=True)  # the alert's idempotency key
    anomaly_id: Mapped[int | None] = _fk("anomalies.id", ondelete="SET NULL")
    metric_id: Mapped[int] = _fk("metrics.id")
    channel: Mapped[str] = mapped_column(String(64))
    rule_pattern: Mapped[str] = mapped_column(String(1024))
    attempt: Mapped[int] = _count(1)
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[int] = _created_at()
    delivered_at: Mapped[int | None] = _epoch()


class AlertMute(Base):
    """Alerts for metrics matching ``pattern`` are muted until ``until``."""

    __tablename__ = "alert_mutes"
    __table_args__ = _table_args()

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pattern: Mapped[str] = mapped_column(String(1024))
    until: Mapped[int] = _epoch()
    created_by: Mapped[int | None] = _fk("users.id", ondelete="SET NULL")
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[int] = _created_at()


class Correlation(Base):
    """A metric correlated with an anomaly (luminosity)."""

    __tablename__ = "correlations"
    __table_args__ = _table_args(UniqueConstraint("anomaly_id", "metric_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    anomaly_id: Mapped[int] = _fk("anomalies.id", ondelete="CASCADE", index=False)
    metric_id: Mapped[int] = _fk("metrics.id")
    coefficient: Mapped[float]
    shifted: Mapped[int] = _count()
    shifted_coefficient: Mapped[float]
