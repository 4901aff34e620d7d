"""Indexes for the paged listings: an account's tracks and WAV tasks, newest first.

A listing pages by keyset on (created_at, id) within one account (``wavforge.core.listing``);
these indexes let a page seek to its cursor and read ``limit`` rows in order, instead of
sorting every row of the account.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_tracks_account_created", "tracks", ["account_id", "created_at", "id"])
    op.create_index("ix_wav_tasks_account_created", "wav_tasks", ["account_id", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_wav_tasks_account_created", table_name="wav_tasks")
    op.drop_index("ix_tracks_account_created", table_name="tracks")
