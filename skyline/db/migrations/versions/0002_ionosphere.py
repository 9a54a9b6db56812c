"""Ionosphere: a profile's learn flag, and the event id of a profile match.

``profile_matches.event_id`` links a match to its anomaly before panorama has stored
the anomaly row (streams are asynchronous); ``anomaly_id`` is filled in later.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 21:05:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "features_profiles",
        sa.Column("learn", sa.Boolean(), nullable=False, server_default=sa.text("0")),
    )
    op.add_column("profile_matches", sa.Column("event_id", sa.String(128), nullable=True))
    op.create_index("ix_profile_matches_event_id", "profile_matches", ["event_id"])


def downgrade() -> None:
    op.drop_index("ix_profile_matches_event_id", table_name="profile_matches")
    with op.batch_alter_table("profile_matches") as batch:
        batch.drop_column("event_id")
    with op.batch_alter_table("features_profiles") as batch:
        batch.drop_column("learn")
