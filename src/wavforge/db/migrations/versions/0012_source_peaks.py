"""Peaks jobs: an imported source's waveform peaks are measured in the background.

One row per track imported from now on (its id is the track's), with the claim columns of a
WAV task, so workers claim, lease, sweep and share them fairly the same way. Tracks imported
before have no row and no peaks.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "peaks_jobs",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(length=80), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(), nullable=True),
        sa.Column("dispatched_at", sa.DateTime(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("completed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_peaks_jobs_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(["id"], ["tracks.id"], name=op.f("fk_peaks_jobs_id_tracks")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_peaks_jobs")),
    )
    op.create_index("ix_peaks_jobs_status_lease", "peaks_jobs", ["status", "lease_expires_at"])
    op.create_index("ix_peaks_jobs_account_status", "peaks_jobs", ["account_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_peaks_jobs_account_status", table_name="peaks_jobs")
    op.drop_index("ix_peaks_jobs_status_lease", table_name="peaks_jobs")
    op.drop_table("peaks_jobs")
