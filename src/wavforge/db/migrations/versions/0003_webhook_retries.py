"""Callback retries per dialect, and webhook secrets that can be rotated.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("dialect", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("next_attempt_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("previous_webhook_secret", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("previous_secret_until", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("previous_secret_until")
        batch.drop_column("previous_webhook_secret")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("next_attempt_at")
        batch.drop_column("dialect")
