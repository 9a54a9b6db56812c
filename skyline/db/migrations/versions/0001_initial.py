"""Initial schema: metrics, anomalies and verdicts, users and keys, profiles, alerts.

Written out explicitly (self-contained: later model changes must not change what
this revision creates); a test compares the migrated schema with the models.

Revision ID: 0001
Revises:
Create Date: 2026-11-23 18:19:31
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}
METRIC_NAME = sa.String(1024).with_variant(
    mysql.VARCHAR(1024, charset="ascii", collation="ascii_bin"), "mysql", "mariadb"
)


def _id() -> sa.Column:
    return sa.Column("id", sa.Integer(), nullable=False, autoincrement=True)


def _epoch(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.BigInteger(), nullable=nullable)


def _flag(name: str, default: bool) -> sa.Column:
    return sa.Column(
        name, sa.Boolean(), nullable=False, server_default=sa.text("1" if default else "0")
    )


def _count(name: str, default: int = 0) -> sa.Column:
    return sa.Column(name, sa.Integer(), nullable=False, server_default=sa.text(str(default)))


def _fk(column: str, table: str, target: str, ondelete: str | None = None) -> sa.Constraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=f"fk_{table}_{column}_{target}", ondelete=ondelete
    )


def _index(table: str, *columns: str, unique: bool = False) -> None:
    op.create_index(f"ix_{table}_{'_'.join(columns)}", table, list(columns), unique=unique)


def _create_metrics_and_keys() -> None:
    op.create_table(
        "features",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_features"),
        sa.UniqueConstraint("name", name="uq_features_name"),
        **MYSQL,
    )
    op.create_table(
        "flux_keys",
        _id(),
        sa.Column("key_hash", sa.String(128), nullable=False),
        sa.Column("namespace", sa.String(1024), nullable=False),
        sa.Column("description", sa.String(255), nullable=False),
        _epoch("created_at"),
        _epoch("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_flux_keys"),
        sa.UniqueConstraint("key_hash", name="uq_flux_keys_key_hash"),
        **MYSQL,
    )
    op.create_table(
        "metrics",
        _id(),
        sa.Column("name", METRIC_NAME, nullable=False),
        _epoch("created_at"),
        _flag("inactive", False),
        _epoch("inactive_at", nullable=True),
        _flag("ionosphere_enabled", False),
        _count("learn_full_duration_days", 30),
        _count("learn_valid_ts_older_than", 3661),
        _count("max_generations", 5),
        sa.Column(
            "max_percent_diff_from_origin", sa.Double(), nullable=False, server_default=sa.text("7")
        ),
        sa.PrimaryKeyConstraint("id", name="pk_metrics"),
        sa.UniqueConstraint("name", name="uq_metrics_name"),
        **MYSQL,
    )


def _create_users() -> None:
    op.create_table(
        "users",
        _id(),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        _epoch("created_at"),
        _flag("disabled", False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.CheckConstraint("role IN ('viewer', 'operator', 'admin')", name="ck_users_role"),
        sa.UniqueConstraint("username", name="uq_users_username"),
        **MYSQL,
    )
    op.create_table(
        "alert_mutes",
        _id(),
        sa.Column("pattern", sa.String(1024), nullable=False),
        _epoch("until"),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        _epoch("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_alert_mutes"),
        _fk("created_by", "alert_mutes", "users", "SET NULL"),
        **MYSQL,
    )
    _index("alert_mutes", "created_by")
    op.create_table(
        "api_tokens",
        _id(),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("token_hash", sa.String(128), nullable=False),
        _epoch("created_at"),
        _epoch("last_used_at", nullable=True),
        _epoch("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        _fk("user_id", "api_tokens", "users", "CASCADE"),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
        **MYSQL,
    )
    _index("api_tokens", "user_id")


def _create_anomalies_and_alerts() -> None:
    op.create_table(
        "anomalies",
        _id(),
        sa.Column("metric_id", sa.Integer(), nullable=False),
        _epoch("timestamp"),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("full_duration", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("algorithms_run", sa.JSON(), nullable=False),
        sa.Column("triggered_algorithms", sa.JSON(), nullable=False),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.Column("verdict", sa.String(32), nullable=False),
        _epoch("end_timestamp", nullable=True),
        _epoch("created_at"),
        sa.Column("event_id", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_anomalies"),
        _fk("metric_id", "anomalies", "metrics"),
        sa.UniqueConstraint("event_id", name="uq_anomalies_event_id"),
        **MYSQL,
    )
    _index("anomalies", "metric_id", "timestamp")
    _index("anomalies", "timestamp")
    op.create_table(
        "alert_log",
        _id(),
        sa.Column("event_id", sa.String(255), nullable=False),
        sa.Column("anomaly_id", sa.Integer(), nullable=True),
        sa.Column("metric_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("rule_pattern", sa.String(1024), nullable=False),
        _count("attempt", 1),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        _epoch("created_at"),
        _epoch("delivered_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_alert_log"),
        _fk("anomaly_id", "alert_log", "anomalies", "SET NULL"),
        _fk("metric_id", "alert_log", "metrics"),
        **MYSQL,
    )
    _index("alert_log", "anomaly_id")
    _index("alert_log", "event_id")
    _index("alert_log", "metric_id")


def _create_anomaly_details() -> None:
    op.create_table(
        "anomaly_verdicts",
        _id(),
        sa.Column("anomaly_id", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("verdict", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("detail", sa.JSON(none_as_null=True), nullable=True),
        _epoch("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_anomaly_verdicts"),
        _fk("anomaly_id", "anomaly_verdicts", "anomalies", "CASCADE"),
        **MYSQL,
    )
    _index("anomaly_verdicts", "anomaly_id")
    op.create_table(
        "correlations",
        _id(),
        sa.Column("anomaly_id", sa.Integer(), nullable=False),
        sa.Column("metric_id", sa.Integer(), nullable=False),
        sa.Column("coefficient", sa.Double(), nullable=False),
        _count("shifted"),
        sa.Column("shifted_coefficient", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_correlations"),
        _fk("anomaly_id", "correlations", "anomalies", "CASCADE"),
        _fk("metric_id", "correlations", "metrics"),
        sa.UniqueConstraint("anomaly_id", "metric_id", name="uq_correlations_anomaly_id_metric_id"),
        **MYSQL,
    )
    _index("correlations", "metric_id")
    op.create_table(
        "labels",
        _id(),
        sa.Column("anomaly_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        _epoch("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_labels"),
        _fk("anomaly_id", "labels", "anomalies", "CASCADE"),
        _fk("user_id", "labels", "users", "SET NULL"),
        **MYSQL,
    )
    _index("labels", "anomaly_id")
    _index("labels", "user_id")


def _create_features_profiles() -> None:
    op.create_table(
        "features_profiles",
        _id(),
        sa.Column("metric_id", sa.Integer(), nullable=False),
        sa.Column("anomaly_id", sa.Integer(), nullable=True),
        _epoch("anomaly_timestamp"),
        sa.Column("full_duration", sa.Integer(), nullable=False),
        sa.Column("resolution", sa.Integer(), nullable=False),
        _flag("enabled", True),
        _flag("deleted", False),
        sa.Column("tsfresh_version", sa.String(32), nullable=False),
        sa.Column("calc_time", sa.Double(), nullable=False),
        sa.Column("features_count", sa.Integer(), nullable=False),
        sa.Column("features_sum", sa.Double(), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        _count("generation"),
        _count("matched_count"),
        _epoch("last_matched", nullable=True),
        _count("checked_count"),
        _epoch("last_checked", nullable=True),
        _count("motif_matched_count"),
        _epoch("motif_last_matched", nullable=True),
        _flag("validated", False),
        sa.Column("label", sa.String(255), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        _epoch("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_features_profiles"),
        _fk("metric_id", "features_profiles", "metrics"),
        _fk("anomaly_id", "features_profiles", "anomalies", "SET NULL"),
        _fk("parent_id", "features_profiles", "features_profiles", "SET NULL"),
        _fk("user_id", "features_profiles", "users", "SET NULL"),
        **MYSQL,
    )
    for column in ("anomaly_id", "metric_id", "parent_id", "user_id"):
        _index("features_profiles", column)


def _create_profile_tables() -> None:
    op.create_table(
        "motifs",
        _id(),
        sa.Column("profile_id", sa.Integer(), nullable=False),
        sa.Column("start_index", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("distance_max", sa.Double(), nullable=True),
        _epoch("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_motifs"),
        _fk("profile_id", "motifs", "features_profiles", "CASCADE"),
        sa.UniqueConstraint(
            "profile_id", "start_index", "size", name="uq_motifs_profile_id_start_index_size"
        ),
        **MYSQL,
    )
    op.create_table(
        "profile_features",
        sa.Column("profile_id", sa.Integer(), nullable=False),
        sa.Column("feature_id", sa.Integer(), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("profile_id", "feature_id", name="pk_profile_features"),
        _fk("profile_id", "profile_features", "features_profiles", "CASCADE"),
        _fk("feature_id", "profile_features", "features"),
        **MYSQL,
    )
    _index("profile_features", "feature_id")
    op.create_table(
        "profile_matches",
        _id(),
        sa.Column("profile_id", sa.Integer(), nullable=False),
        sa.Column("anomaly_id", sa.Integer(), nullable=True),
        _epoch("metric_timestamp"),
        sa.Column("match_type", sa.String(16), nullable=False),
        sa.Column("distance", sa.Double(), nullable=True),
        sa.Column("features_sum", sa.Double(), nullable=True),
        sa.Column("common_features_count", sa.Integer(), nullable=True),
        _flag("validated", False),
        _epoch("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_profile_matches"),
        _fk("profile_id", "profile_matches", "features_profiles", "CASCADE"),
        _fk("anomaly_id", "profile_matches", "anomalies", "SET NULL"),
        sa.CheckConstraint(
            "match_type IN ('features', 'motif')", name="ck_profile_matches_match_type"
        ),
        **MYSQL,
    )
    _index("profile_matches", "anomaly_id")
    _index("profile_matches", "profile_id")
    op.create_table(
        "profile_series",
        sa.Column("profile_id", sa.Integer(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("profile_id", "timestamp", name="pk_profile_series"),
        _fk("profile_id", "profile_series", "features_profiles", "CASCADE"),
        **MYSQL,
    )


def upgrade() -> None:
    _create_metrics_and_keys()
    _create_users()
    _create_anomalies_and_alerts()
    _create_anomaly_details()
    _create_features_profiles()
    _create_profile_tables()


def downgrade() -> None:
    for table in (
        "profile_series",
        "profile_matches",
        "profile_features",
        "motifs",
        "features_profiles",
        "labels",
        "correlations",
        "anomaly_verdicts",
        "alert_log",
        "anomalies",
        "api_tokens",
        "alert_mutes",
        "users",
        "metrics",
        "flux_keys",
        "features",
    ):
        op.drop_table(table)
