"""Tables. Portable SQL only: every type and constraint here works on SQLite and PostgreSQL.

Times are naive UTC ``DateTime`` values everywhere (SQLite has no time zones, and mixing aware
and naive values is a classic source of bugs); :func:`wavforge.core.clock.now` makes them.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID = String(40)
FORMAT_KEY_LENGTH = 300  # OutputOptions.key(): compact JSON of the options asked for


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def table_of(entity: type[Base]) -> Table:
    """The entity's table, for statements on the hot paths that run without the ORM."""
    return cast(Table, entity.__table__)


def column_values(instance: Base) -> dict[str, object]:
    """An entity's column values, for a plain INSERT (database-generated keys left out)."""
    table = table_of(type(instance))
    return {c.key: getattr(instance, c.key) for c in table.columns if c.autoincrement is not True}


class Account(Base):
    """``credits`` is the running total of the account's ledger, kept beside it for a cheap
    guarded ``UPDATE``; the CHECK makes a negative balance impossible even for a buggy caller."""

    __tablename__ = "accounts"
    __table_args__ = (CheckConstraint("credits >= 0", name="credits_not_negative"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    credits: Mapped[int] = mapped_column(Integer, default=0)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    webhook_secret: Mapped[str] = mapped_column(String(100))
    # After a rotation the old secret still signs (beside the new one) until this time.
    previous_webhook_secret: Mapped[str | None] = mapped_column(String(100))
    previous_secret_until: Mapped[datetime | None] = mapped_column(DateTime)
    # The vendor profile its keys answer in (wavforge.profiles); NULL: the default.
    profile: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTime)


class ApiKey(Base):
    """Only a SHA-256 of the key is kept, plus a short prefix people can recognise it by."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(20))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)
    profile: Mapped[str | None] = mapped_column(String(20))  # overrides the account's


class MusicTask(Base):
    """A batch of tracks; in wavforge they arrive by import rather than by generation."""

    __tablename__ = "music_tasks"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(30))
    params: Mapped[dict[str, object]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class Track(Base):
    __tablename__ = "tracks"
    # A client asks whether it uploaded a file before, by its SHA-256 (``wavforge convert``).
    __table_args__ = (
        Index("ix_tracks_account_sha256", "account_id", "source_sha256"),
        # Listings page newest first by keyset (wavforge.core.listing).
        Index("ix_tracks_account_created", "account_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    music_task_id: Mapped[str] = mapped_column(ForeignKey("music_tasks.id"), index=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(400))
    tags: Mapped[str] = mapped_column(String(400))
    prompt: Mapped[str] = mapped_column(Text)
    duration: Mapped[float] = mapped_column(Float)
    source_key: Mapped[str] = mapped_column(String(300))
    source_name: Mapped[str] = mapped_column(String(300))
    source_format: Mapped[str] = mapped_column(String(40))
    source_codec: Mapped[str] = mapped_column(String(40))
    sample_rate: Mapped[int] = mapped_column(Integer)
    channels: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    # Deleted by its owner (or expired): its files are gone or going; ``source_key`` is
    # emptied once the source file is.
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime)
    source_sha256: Mapped[str | None] = mapped_column(String(64))  # None: imported before


class WavTask(Base):
    """One conversion; the row, not the queue, is the truth about it.

    ``live_track_id`` equals ``track_id`` while the record blocks a new conversion of its
    track in its format (pending, running, or succeeded and not expired) and is NULL
    otherwise. ``format_key`` is the requested format (``OutputOptions.key``, ``""`` for the
    default); a unique index on both makes "one live WAV per track and format" hold even for
    racing submissions.
    """

    __tablename__ = "wav_tasks"
    __table_args__ = (
        Index("ix_wav_tasks_status_lease", "status", "lease_expires_at"),
        # Each submission counts its account's unfinished tasks (the quota).
        Index("ix_wav_tasks_account_status", "account_id", "status"),
        # Listings page newest first by keyset (wavforge.core.listing).
        Index("ix_wav_tasks_account_created", "account_id", "created_at", "id"),
        UniqueConstraint("live_track_id", "format_key", name="uq_wav_tasks_live_track_format"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    track_id: Mapped[str] = mapped_column(ForeignKey("tracks.id"), index=True)
    live_track_id: Mapped[str | None] = mapped_column(ID)
    # The table has a server default of "" too (0009), for rows from before; not declared here,
    # since the ORM would then read it back after every insert instead of batching inserts.
    format_key: Mapped[str] = mapped_column(String(FORMAT_KEY_LENGTH), default="")
    dialect: Mapped[str] = mapped_column(String(20))
    callback_url: Mapped[str | None] = mapped_column(String(2048))
    options: Mapped[dict[str, object]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(30))
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    credits_charged: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(80))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime)
    wav_key: Mapped[str | None] = mapped_column(String(300))
    wav_bytes: Mapped[int | None] = mapped_column(BigInteger)
    analysis: Mapped[dict[str, object] | None] = mapped_column(JSON)
    error_code: Mapped[int | None] = mapped_column(Integer)
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime, index=True)


class PeaksJob(Base):
    """Measuring one imported source's waveform peaks, in the background (``core.source_peaks``).

    Its id is the track's. It has a WAV task's claim columns under the same names, so the
    same claims, leases, sweep and fair share serve both. The row stays once the job is done
    or failed: the fair share reads when an account was last served from it.
    """

    __tablename__ = "peaks_jobs"
    __table_args__ = (
        Index("ix_peaks_jobs_status_lease", "status", "lease_expires_at"),
        Index("ix_peaks_jobs_account_status", "account_id", "status"),
    )

    id: Mapped[str] = mapped_column(ForeignKey("tracks.id"), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    status: Mapped[str] = mapped_column(String(30))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(80))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime)
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime)


class Delivery(Base):
    """An outbox row: one event to deliver to a callback URL, written with the state change."""

    __tablename__ = "deliveries"
    __table_args__ = (
        Index("ix_deliveries_status_lease", "status", "lease_expires_at"),
        Index("ix_deliveries_account_created", "account_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    # None for an event that announces no task (a test event).
    wav_task_id: Mapped[str | None] = mapped_column(ForeignKey("wav_tasks.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20), default="task", server_default="task")
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    payload: Mapped[dict[str, object]] = mapped_column(JSON)
    dialect: Mapped[str | None] = mapped_column(String(20))  # picks the retry schedule
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime)  # None: due now
    lease_owner: Mapped[str | None] = mapped_column(String(80))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime)


class DeliveryAttempt(Base):
    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("deliveries.id"), index=True)
    started_at: Mapped[datetime] = mapped_column(DateTime)
    duration_ms: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(500))
    # What was sent and what came back, bounded (core/deliveries.py): headers as
    # [[name, value], ...] with signatures masked, and the first bytes of the answer.
    request_headers: Mapped[list[list[str]] | None] = mapped_column(JSON)
    response_headers: Mapped[list[list[str]] | None] = mapped_column(JSON)
    response_body: Mapped[str | None] = mapped_column(Text)


class LedgerEntry(Base):
    """One change of an account's credits. A task is charged and refunded at most once each:
    the unique constraint holds that even when a failure is processed twice (NULL task ids,
    as grants have, never collide)."""

    __tablename__ = "ledger_entries"
    __table_args__ = (UniqueConstraint("wav_task_id", "reason", name="uq_ledger_task_reason"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    amount: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(20))
    wav_task_id: Mapped[str | None] = mapped_column(ID)
    note: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime)


class IdempotencyKey(Base):
    """The first answer to a submission made with an ``Idempotency-Key`` (CONTRACT §8).

    ``status_code`` is NULL while that first request is still running.
    """

    __tablename__ = "idempotency_keys"

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    body: Mapped[dict[str, object] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True)


class ServiceFlag(Base):
    """Switches every process reads at run time (maintenance mode), shared through the database."""

    __tablename__ = "service_flags"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class ServiceSecret(Base):
    """A secret created once per deployment and read by every process (the link key), so API
    processes on different machines sign and verify the same links with no shared disk."""

    __tablename__ = "service_secrets"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime)
