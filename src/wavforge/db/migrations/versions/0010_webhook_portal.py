"""The webhook portal: a delivery may announce no task (a test event), says what kind of
event it is, and is listed per account newest first; an attempt keeps what was sent and
what came back (headers with signatures masked, the first bytes of the answer).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.alter_column("wav_task_id", existing_type=sa.String(length=40), nullable=True)
        batch.add_column(
            sa.Column("kind", sa.String(length=20), server_default="task", nullable=False)
        )
        batch.create_index(
            "ix_deliveries_account_created", ["account_id", "created_at", "id"], unique=False
        )
    with op.batch_alter_table("delivery_attempts") as batch:
        batch.add_column(sa.Column("request_headers", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("response_headers", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("response_body", sa.Text(), nullable=True))


def downgrade() -> None:
    _forget_test_events()
    with op.batch_alter_table("delivery_attempts") as batch:
        batch.drop_column("response_body")
        batch.drop_column("response_headers")
        batch.drop_column("request_headers")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_index("ix_deliveries_account_created")
        batch.drop_column("kind")
        batch.alter_column("wav_task_id", existing_type=sa.String(length=40), nullable=False)


def _forget_test_events() -> None:
    """Before, every delivery announced a task: events without one cannot stay."""
    bind = op.get_bind()
    bind.execute(
        sa.text(
            "DELETE FROM delivery_attempts WHERE delivery_id IN "
            "(SELECT id FROM deliveries WHERE wav_task_id IS NULL)"
        )
    )
    bind.execute(sa.text("DELETE FROM deliveries WHERE wav_task_id IS NULL"))
