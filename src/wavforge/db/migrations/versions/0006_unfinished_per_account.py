"""Index the unfinished-task quota: every submission counts its account's unfinished tasks.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_wav_tasks_account_status", "wav_tasks", ["account_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_wav_tasks_account_status", table_name="wav_tasks")
