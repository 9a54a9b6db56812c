"""Labelled metrics: the label set of each labelled metric, one row per label
(skyline.store.labels; panorama writes them from the Redis ``labels:new`` set).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 02:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "metric_labels",
        sa.Column("metric_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("value", sa.String(length=512), nullable=False),
        sa.ForeignKeyConstraint(
            ["metric_id"],
            ["metrics.id"],
            name="fk_metric_labels_metric_id_metrics",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("metric_id", "name", name="pk_metric_labels"),
        **MYSQL,
    )
    op.create_index("ix_metric_labels_name_value", "metric_labels", ["name", "value"])


def downgrade() -> None:
    op.drop_index("ix_metric_labels_name_value", table_name="metric_labels")
    op.drop_table("metric_labels")
