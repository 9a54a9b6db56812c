"""Ionosphere learning: the anomalies it has evaluated (a restart does not evaluate
them again, a pass can stop and go on where it stopped), and the raw windows of
unmatched anomalies of learn metrics (the raw store trims a window's start long
before learning may use it).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 21:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "learn_evaluated",
        sa.Column("anomaly_id", sa.Integer(), nullable=False),
        sa.Column("anomaly_timestamp", sa.BigInteger(), nullable=False),
        sa.Column("evaluated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["anomaly_id"],
            ["anomalies.id"],
            name="fk_learn_evaluated_anomaly_id_anomalies",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("anomaly_id", name="pk_learn_evaluated"),
        **MYSQL,
    )
    op.create_index(
        "ix_learn_evaluated_anomaly_timestamp", "learn_evaluated", ["anomaly_timestamp"]
    )

    op.create_table(
        "learn_windows",
        sa.Column("event_id", sa.String(128), nullable=False),
        sa.Column("full_duration", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("metric_id", sa.Integer(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column(
            "points",
            sa.LargeBinary().with_variant(mysql.MEDIUMBLOB(), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["metric_id"],
            ["metrics.id"],
            name="fk_learn_windows_metric_id_metrics",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("event_id", "full_duration", name="pk_learn_windows"),
        **MYSQL,
    )
    op.create_index("ix_learn_windows_metric_id", "learn_windows", ["metric_id"])
    op.create_index("ix_learn_windows_timestamp", "learn_windows", ["timestamp"])


def downgrade() -> None:
    op.drop_index("ix_learn_windows_timestamp", table_name="learn_windows")
    op.drop_index("ix_learn_windows_metric_id", table_name="learn_windows")
    op.drop_table("learn_windows")
    op.drop_index("ix_learn_evaluated_anomaly_timestamp", table_name="learn_evaluated")
    op.drop_table("learn_evaluated")
