"""Tracks can be deleted: the record stays, marked, and its files go. And a track's source
has a SHA-256, so a client can tell a file it already uploaded.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tracks") as batch:
        batch.add_column(sa.Column("deleted_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("source_sha256", sa.String(length=64), nullable=True))
    op.create_index("ix_tracks_account_sha256", "tracks", ["account_id", "source_sha256"])


def downgrade() -> None:
    op.drop_index("ix_tracks_account_sha256", table_name="tracks")
    with op.batch_alter_table("tracks") as batch:
        batch.drop_column("source_sha256")
        batch.drop_column("deleted_at")
