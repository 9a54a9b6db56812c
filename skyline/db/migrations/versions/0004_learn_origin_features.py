"""Ionosphere learning: the features of each origin profile over the learning window,
computed once while the history covers that window and kept (the rollups keep only
``[mirage] rollup_retention``, so an origin's window is soon cut at its start).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 22:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "learn_origin_features",
        sa.Column("profile_id", sa.Integer(), nullable=False),
        sa.Column("duration", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("feature_id", sa.Integer(), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["feature_id"],
            ["features.id"],
            name="fk_learn_origin_features_feature_id_features",
        ),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["features_profiles.id"],
            name="fk_learn_origin_features_profile_id_features_profiles",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "profile_id", "duration", "feature_id", name="pk_learn_origin_features"
        ),
        **MYSQL,
    )
    op.create_index("ix_learn_origin_features_feature_id", "learn_origin_features", ["feature_id"])


def downgrade() -> None:
    op.drop_index("ix_learn_origin_features_feature_id", table_name="learn_origin_features")
    op.drop_table("learn_origin_features")
