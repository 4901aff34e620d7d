"""Credit ledger, idempotency keys and service flags; balances can no longer go negative.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "account_id",
            sa.String(length=40),
            sa.ForeignKey("accounts.id", name="fk_ledger_entries_account_id_accounts"),
            nullable=False,
        ),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("wav_task_id", sa.String(length=40), nullable=True),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_entries"),
        sa.UniqueConstraint("wav_task_id", "reason", name="uq_ledger_task_reason"),
    )
    op.create_index("ix_ledger_entries_account_id", "ledger_entries", ["account_id"])
    op.create_table(
        "idempotency_keys",
        sa.Column(
            "account_id",
            sa.String(length=40),
            sa.ForeignKey("accounts.id", name="fk_idempotency_keys_account_id_accounts"),
            nullable=False,
        ),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("body", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "key", name="pk_idempotency_keys"),
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])
    op.create_table(
        "service_flags",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_service_flags"),
    )
    op.create_index("ix_wav_tasks_expires_at", "wav_tasks", ["expires_at"])
    _opening_balances()
    with op.batch_alter_table("accounts") as batch:
        batch.create_check_constraint(op.f("ck_accounts_credits_not_negative"), "credits >= 0")


def _opening_balances() -> None:
    """Every existing balance enters the ledger once, so sum(ledger) = balance from day one."""
    now = datetime.now(UTC).replace(tzinfo=None)
    op.execute(
        sa.text(
            "INSERT INTO ledger_entries (account_id, amount, reason, wav_task_id, note, created_at)"
            " SELECT id, credits, 'grant', NULL, 'opening balance', :now"
            " FROM accounts WHERE credits <> 0"
        ).bindparams(now=now)
    )


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.drop_constraint("ck_accounts_credits_not_negative", type_="check")
    op.drop_index("ix_wav_tasks_expires_at", table_name="wav_tasks")
    op.drop_table("service_flags")
    op.drop_index("ix_idempotency_keys_created_at", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    op.drop_index("ix_ledger_entries_account_id", table_name="ledger_entries")
    op.drop_table("ledger_entries")
