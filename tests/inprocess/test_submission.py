"""Accepting a conversion (``core.wav_tasks``): the charge, the row, the message, the refusals."""

from __future__ import annotations

import pytest

from wavforge.core import recovery, retention, wav_tasks
from wavforge.core.context import Context
from wavforge.core.records import TrackRecord
from wavforge.core.requests import WavRequest
from wavforge.core.states import WavStatus
from wavforge.core.telemetry import PurgeKind
from wavforge.errors import (
    Conflict,
    InsufficientCredits,
    InvalidRequest,
    NotFound,
    QuotaExceeded,
    TooLarge,
)

from .fakes import Clock, EventLog, RecordingDispatcher
from .support import (
    CALLBACK,
    Account,
    balance,
    ledger_of,
    new_account,
    new_track,
    submit,
    task_row,
    work,
)


def test_accepting_charges_writes_the_row_and_wakes_a_worker(
    ctx: Context,
    account: Account,
    track: TrackRecord,
    dispatcher: RecordingDispatcher,
    events: EventLog,
) -> None:
    record = submit(ctx, account, track, callback_url=CALLBACK)

    assert record.status == WavStatus.PENDING and record.credits_charged == 1
    assert record.track_id == track.id and record.callback_url == CALLBACK
    row = task_row(ctx, record.id)
    assert row.account_id == account.id and row.live_track_id == track.id
    assert row.format_key == "" and row.attempts == 0 and row.lease_owner is None
    assert balance(ctx, account) == 9
    assert ledger_of(ctx, account) == [("grant", 10, None), ("charge", -1, record.id)]
    assert dispatcher.converts == [record.id]
    assert events.of("credits_charged") == [1]


def test_a_second_default_submission_names_the_live_task(
    ctx: Context,
    account: Account,
    track: TrackRecord,
    dispatcher: RecordingDispatcher,
    events: EventLog,
) -> None:
    first = submit(ctx, account, track)
    with pytest.raises(Conflict) as refused:
        submit(ctx, account, track)
    assert refused.value.code == 409 and refused.value.data == first.id
    assert balance(ctx, account) == 9  # charged once
    assert dispatcher.converts == [first.id]
    assert events.of("credits_charged") == [1]

    work(ctx, dispatcher)  # a finished conversion still holds its track in its format
    with pytest.raises(Conflict) as again:
        submit(ctx, account, track)
    assert again.value.data == first.id


def test_another_format_of_the_same_track_is_a_task_of_its_own(
    ctx: Context, account: Account, track: TrackRecord
) -> None:
    default = submit(ctx, account, track)
    cd = submit(ctx, account, track, options={"preset": "distribution"})
    hi = submit(ctx, account, track, options={"bit_depth": 24, "sample_rate": 96_000})
    assert len({default.id, cd.id, hi.id}) == 3
    assert task_row(ctx, cd.id).format_key == '{"preset":"distribution"}'
    assert balance(ctx, account) == 7
    with pytest.raises(Conflict) as refused:  # the same options, spelled as before
        submit(ctx, account, track, options={"sample_rate": 96_000, "bit_depth": 24})
    assert refused.value.data == hi.id


def test_not_enough_credits_changes_nothing(
    ctx: Context, dispatcher: RecordingDispatcher, events: EventLog
) -> None:
    poor = new_account(ctx, credits=0)
    track = new_track(ctx, poor)
    with pytest.raises(InsufficientCredits) as refused:
        submit(ctx, poor, track)
    assert refused.value.code == 429
    assert balance(ctx, poor) == 0 and ledger_of(ctx, poor) == []
    assert dispatcher.converts == [] and events.of("credits_charged") == []
    # Nothing holds the track: with credits granted, the same submission is accepted.
    rich = new_account(ctx, credits=1)
    assert submit(ctx, rich, new_track(ctx, rich)).status == WavStatus.PENDING


@pytest.mark.settings(max_unfinished=2)
def test_the_unfinished_quota_rolls_the_charge_back(
    ctx: Context, account: Account, dispatcher: RecordingDispatcher, events: EventLog
) -> None:
    tracks = [new_track(ctx, account) for _ in range(3)]
    submit(ctx, account, tracks[0])
    submit(ctx, account, tracks[1])
    with pytest.raises(QuotaExceeded):
        submit(ctx, account, tracks[2])
    assert balance(ctx, account) == 8 and len(dispatcher.converts) == 2
    assert events.of("credits_charged") == [1, 1]

    work(ctx, dispatcher)  # finished tasks no longer count
    assert submit(ctx, account, tracks[2]).status == WavStatus.PENDING


def test_requests_are_checked_before_anything_is_written(
    ctx: Context, account: Account, track: TrackRecord, dispatcher: RecordingDispatcher
) -> None:
    other = new_account(ctx)
    with pytest.raises(NotFound):  # another account's track answers as one that never was
        submit(ctx, other, track)
    with pytest.raises(InvalidRequest, match="task_id or audio_id is required"):
        wav_tasks.submit(ctx, account.id, WavRequest(dialect="suno"))
    mismatched = WavRequest(dialect="suno", audio_id=track.id, task_id="not-its-task")
    with pytest.raises(NotFound):
        wav_tasks.submit(ctx, account.id, mismatched)
    second = new_track(ctx, account)
    paired_wrong = WavRequest(dialect="suno", audio_id=track.id, task_id=second.music_task_id)
    with pytest.raises(InvalidRequest, match="does not belong"):
        wav_tasks.submit(ctx, account.id, paired_wrong)
    with pytest.raises(TooLarge):
        wav_tasks.submit(ctx, account.id, WavRequest(dialect="suno", audio_id="x" * 129))
    with pytest.raises(InvalidRequest, match="private or internal"):
        submit(ctx, account, track, callback_url="http://127.0.0.1:8080/hook")
    with pytest.raises(InvalidRequest):
        submit(ctx, account, track, options={"bit_depth": 12})
    assert balance(ctx, account) == 10 and dispatcher.converts == []


def test_a_lost_message_is_sent_again_by_the_sweep(
    ctx: Context,
    account: Account,
    track: TrackRecord,
    dispatcher: RecordingDispatcher,
    clock: Clock,
) -> None:
    dispatcher.down = True
    record = submit(ctx, account, track)  # accepted: the row, not the message, is the task
    assert task_row(ctx, record.id).status == WavStatus.PENDING
    dispatcher.down = False

    assert recovery.sweep(ctx).conversions == 0  # not overdue yet
    clock.advance(ctx.settings.lease_seconds + 1)
    assert recovery.sweep(ctx).conversions == 1
    assert dispatcher.converts == [record.id]
    assert recovery.sweep(ctx).conversions == 0  # dispatched again just now
    work(ctx, dispatcher)
    assert task_row(ctx, record.id).status == WavStatus.SUCCESS


def test_an_expired_wav_frees_its_track(
    ctx: Context,
    account: Account,
    track: TrackRecord,
    dispatcher: RecordingDispatcher,
    clock: Clock,
    events: EventLog,
) -> None:
    first = submit(ctx, account, track)
    work(ctx, dispatcher)
    clock.advance(ctx.settings.retention_seconds + 1)
    second = submit(ctx, account, track)  # freed at submission, before any purge ran
    assert second.id != first.id and task_row(ctx, first.id).live_track_id is None
    assert balance(ctx, account) == 8

    work(ctx, dispatcher)
    result = retention.purge(ctx)
    assert result.files_deleted == 1
    assert ctx.storage.size(f"wav/{first.id}.wav") is None
    assert ctx.storage.size(f"wav/{second.id}.wav") is not None
    assert task_row(ctx, first.id).wav_key is None
    assert wav_tasks.get_wav(ctx, account.id, first.id).wav_url is None
    assert ("purged", (PurgeKind.EXPIRED_WAV, 1)) in events.events
