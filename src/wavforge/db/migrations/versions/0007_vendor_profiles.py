"""Vendor profiles: an account's, and a key's own (which wins), chosen by name; NULL means
the server's default profile.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("accounts", "api_keys"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("profile", sa.String(length=20), nullable=True))


def downgrade() -> None:
    for table in ("accounts", "api_keys"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("profile")
