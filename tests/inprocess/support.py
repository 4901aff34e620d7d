"""Short ways to set up and read back what the tests of this tier need, through the core's
own functions (accounts, imports, submissions, conversions) and plain reads of the rows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import func, select

from wavforge.core import accounts, conversion, ledger, tracks, wav_tasks
from wavforge.core.context import Context
from wavforge.core.records import TrackRecord, WavRecord
from wavforge.core.requests import WavRequest
from wavforge.db.models import Delivery, DeliveryAttempt, WavTask

from .fakes import RecordingDispatcher

# An address literal: checking it asks no DNS, and no request is ever sent to it here.
CALLBACK = "https://93.184.216.34/wavforge-callback"


@dataclass(frozen=True)
class Account:
    id: str
    webhook_secret: str


def new_account(ctx: Context, credits: int = 10, name: str = "someone") -> Account:
    issued = accounts.create_account(ctx.db, name, credits=credits)
    return Account(issued.account_id, issued.webhook_secret)


def new_track(ctx: Context, account: Account, content: bytes = b"ID3 an mp3") -> TrackRecord:
    """Import one file as the account's track (probed by the context's prober)."""
    ctx.settings.scratch_dir.mkdir(parents=True, exist_ok=True)
    staged = ctx.settings.scratch_dir / f"upload-{len(list(ctx.settings.scratch_dir.iterdir()))}"
    staged.write_bytes(content)
    music = tracks.import_files(
        ctx,
        account.id,
        [tracks.StagedFile(staged, "song.mp3")],
        tracks.ImportMeta(title="Song"),
    )
    return music.tracks[0]


def submit(
    ctx: Context,
    account: Account,
    track: TrackRecord,
    *,
    callback_url: str | None = None,
    dialect: str = "suno",
    options: Mapping[str, object] | None = None,
) -> WavRecord:
    request = WavRequest(
        dialect=dialect, audio_id=track.id, callback_url=callback_url, options=options or {}
    )
    return wav_tasks.submit(ctx, account.id, request)


def work(ctx: Context, dispatcher: RecordingDispatcher) -> int:
    """Run every conversion message sent so far, as a worker would; returns how many."""
    messages = dispatcher.take_converts()
    for task_id in messages:
        conversion.run(ctx, task_id)
    return len(messages)


def task_row(ctx: Context, task_id: str) -> WavTask:
    with ctx.db.read() as session:
        return session.get_one(WavTask, task_id)


def delivery_rows(ctx: Context, task_id: str) -> list[Delivery]:
    with ctx.db.read() as session:
        query = select(Delivery).where(Delivery.wav_task_id == task_id)
        return list(session.scalars(query.order_by(Delivery.created_at)))


def attempt_count(ctx: Context, delivery_id: str) -> int:
    with ctx.db.read() as session:
        query = select(func.count()).where(DeliveryAttempt.delivery_id == delivery_id)
        return int(session.scalar(query) or 0)


def balance(ctx: Context, account: Account) -> int:
    """The account's credits, checked against its ledger's sum on every read."""
    credits = accounts.balance(ctx.db, account.id)
    assert credits == ledger.total(ctx.db, account.id), "balance and ledger disagree"
    return credits


def ledger_of(ctx: Context, account: Account) -> list[tuple[str, int, str | None]]:
    """(reason, amount, task) of each ledger row, oldest first."""
    entries = reversed(ledger.entries(ctx.db, account.id))
    return [(entry.reason, entry.amount, entry.wav_task_id) for entry in entries]
