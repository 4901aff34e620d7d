"""How a conversion ends (``core.conversion``): the WAV and its analysis recorded, or a failure
with its code and exactly one refund, or a hand-back that is tried again up to the limit."""

from __future__ import annotations

import wave
from collections.abc import Callable
from datetime import timedelta

import pytest

from wavforge.audio import ConversionFailed, LimitExceeded, OutputOptions, UnsupportedAudio
from wavforge.audio.options import dither_seed
from wavforge.core import conversion, leases, ledger, recovery, wav_tasks
from wavforge.core.context import Context
from wavforge.core.records import TrackRecord
from wavforge.core.states import FailureCode, WavStatus
from wavforge.core.telemetry import ConversionOutcome as Outcome
from wavforge.storage import StorageError

from .fakes import Clock, EventLog, FakeConverter, RecordingDispatcher
from .support import Account, balance, ledger_of, submit, task_row, work


def test_a_success_records_the_wav_and_its_analysis(
    ctx: Context,
    account: Account,
    track: TrackRecord,
    converter: FakeConverter,
    dispatcher: RecordingDispatcher,
    clock: Clock,
    events: EventLog,
) -> None:
    task_id = submit(ctx, account, track, options={"bit_depth": 24}).id
    assert work(ctx, dispatcher) == 1

    (call,) = converter.calls
    assert call.source == b"ID3 an mp3"  # the stored source, as imported
    assert call.dst == ctx.settings.scratch_dir / f"{task_id}.wav.part"
    assert call.options["options"] == OutputOptions(bit_depth=24)
    assert call.options["dither_seed"] == dither_seed(task_id)
    assert call.options["limits"] == ctx.settings.audio_limits()
    assert call.options["loudness"] is False  # not asked for, and off by default
    assert not call.dst.exists()  # the scratch file became the stored WAV

    row = task_row(ctx, task_id)
    assert row.status == WavStatus.SUCCESS and row.progress == 1.0
    assert row.wav_key == f"wav/{task_id}.wav" and row.lease_owner is None
    assert row.completed_at == clock.now()
    assert row.expires_at == clock.now() + timedelta(seconds=ctx.settings.retention_seconds)
    assert row.analysis is not None and row.analysis["frames"] == FakeConverter.FRAMES
    assert row.analysis["sourceCodec"] == "mp3" and row.analysis["sourceLossy"] is True
    with ctx.storage.local_copy(row.wav_key) as stored, wave.open(str(stored)) as wav:
        assert wav.getnframes() == FakeConverter.FRAMES
    assert row.wav_bytes == ctx.storage.size(row.wav_key)

    record = wav_tasks.get_wav(ctx, account.id, task_id)
    assert record.wav_url is not None and f"/files/wav/{task_id}/" in record.wav_url
    assert balance(ctx, account) == 9  # charged, not refunded
    assert events.of("conversion_finished") == [Outcome.SUCCEEDED]
    assert events.of("credits_refunded") == []
    assert dispatcher.deliveries == []  # no callback URL, no delivery


@pytest.mark.parametrize(
    ("error", "code", "message", "outcome"),
    [
        (UnsupportedAudio("no audio"), 400, "unsupported source: no audio", Outcome.BAD_SOURCE),
        (LimitExceeded("too long"), 400, "source refused: too long", Outcome.BAD_SOURCE),
        (ConversionFailed("the decoder died"), 501, "the decoder died", Outcome.CONVERSION_FAILED),
        (RuntimeError("a bug"), 500, "server error during conversion", Outcome.SERVER_ERROR),
    ],
    ids=["unsupported", "over-a-limit", "converter-died", "crash"],
)
def test_a_failure_fails_the_task_with_its_code_and_refunds_once(
    ctx: Context,
    account: Account,
    track: TrackRecord,
    converter: FakeConverter,
    dispatcher: RecordingDispatcher,
    events: EventLog,
    error: Exception,
    code: int,
    message: str,
    outcome: Outcome,
) -> None:
    task_id = submit(ctx, account, track).id
    converter.fail_next(error)
    work(ctx, dispatcher)

    row = task_row(ctx, task_id)
    assert row.status == WavStatus.GENERATE_WAV_FAILED and row.error_code == code
    assert row.error_message is not None and message in row.error_message
    assert row.live_track_id is None and row.wav_key is None and row.lease_owner is None
    assert balance(ctx, account) == 10
    assert ledger_of(ctx, account) == [
        ("grant", 10, None),
        ("charge", -1, task_id),
        ("refund", 1, task_id),
    ]
    assert events.of("credits_charged") == [1] and events.of("credits_refunded") == [1]
    assert events.of("conversion_finished") == [outcome]
    assert not list(ctx.settings.scratch_dir.glob("*.part"))
    assert ctx.storage.size(f"wav/{task_id}.wav") is None

    # The same message again (a duplicate, a replay): nothing to claim, nothing refunded.
    conversion.run(ctx, task_id)
    with ctx.db.write() as session:
        assert not ledger.refund(session, account.id, task_id, 1)  # the ledger refuses it too
    assert balance(ctx, account) == 10 and events.of("credits_refunded") == [1]
    # The failed task freed its track: the same format may be asked for again.
    assert submit(ctx, account, track).id != task_id


def test_a_source_missing_from_storage_fails_with_500(
    ctx: Context, account: Account, track: TrackRecord, dispatcher: RecordingDispatcher
) -> None:
    task_id = submit(ctx, account, track).id
    (key,) = ctx.storage.keys("sources/")
    ctx.storage.delete(key)
    work(ctx, dispatcher)
    row = task_row(ctx, task_id)
    assert row.status == WavStatus.GENERATE_WAV_FAILED
    assert row.error_code == FailureCode.SERVER_ERROR and balance(ctx, account) == 10


@pytest.mark.settings(max_attempts=3)
def test_a_passing_fault_is_tried_again_until_the_attempts_run_out(
    ctx: Context,
    account: Account,
    track: TrackRecord,
    converter: FakeConverter,
    dispatcher: RecordingDispatcher,
    clock: Clock,
    events: EventLog,
) -> None:
    """Storage down for a moment: handed back, not failed, and not refunded; the sweep sends
    it again once due. A task that keeps failing so gives up after ``max_attempts``."""
    task_id = submit(ctx, account, track).id
    for attempt in (1, 2, 3):
        converter.fail_next(StorageError("the disk is full"))
        assert work(ctx, dispatcher) == 1
        row = task_row(ctx, task_id)
        assert row.status == WavStatus.PENDING and row.attempts == attempt
        assert row.lease_owner is None and row.live_track_id == track.id
        assert balance(ctx, account) == 9
        assert recovery.sweep(ctx).conversions == 0  # not in a tight loop: due a lease later
        clock.advance(ctx.settings.lease_seconds + 1)
        assert recovery.sweep(ctx).conversions == 1

    work(ctx, dispatcher)  # the fourth claim finds the attempts spent
    assert len(converter.calls) == 3
    row = task_row(ctx, task_id)
    assert row.status == WavStatus.GENERATE_WAV_FAILED and row.attempts == 4
    assert row.error_code == FailureCode.SERVER_ERROR
    assert row.error_message == "conversion gave up after repeated worker failures"
    assert balance(ctx, account) == 10 and events.of("credits_refunded") == [1]
    assert events.of("conversion_finished") == [Outcome.RETRYING] * 3 + [Outcome.GAVE_UP]


@pytest.mark.settings(max_attempts=2)
def test_a_task_whose_workers_keep_dying_gives_up_and_refunds(
    ctx: Context,
    account: Account,
    track: TrackRecord,
    dispatcher: RecordingDispatcher,
    converter: FakeConverter,
    clock: Clock,
    events: EventLog,
) -> None:
    task_id = submit(ctx, account, track).id
    for worker in ("dies-first", "dies-second"):  # each claims, then vanishes with its lease
        with ctx.db.write() as session:
            assert leases.claim_wav(session, task_id, worker, ctx.settings.lease_seconds)
        clock.advance(ctx.settings.lease_seconds + 1)
    dispatcher.take_converts()
    assert recovery.sweep(ctx).conversions == 1
    work(ctx, dispatcher)

    assert converter.calls == []  # not converted a third time
    row = task_row(ctx, task_id)
    assert row.status == WavStatus.GENERATE_WAV_FAILED and row.attempts == 3
    assert balance(ctx, account) == 10 and events.of("credits_refunded") == [1]
    assert events.of("conversion_finished") == [Outcome.GAVE_UP]


def test_a_conversion_that_loses_its_lease_leaves_the_task_to_its_new_owner(
    ctx: Context,
    account: Account,
    track: TrackRecord,
    converter: FakeConverter,
    dispatcher: RecordingDispatcher,
    clock: Clock,
    events: EventLog,
) -> None:
    """A conversion stalls past its lease, another worker takes the task over, and the
    stalled one's next heartbeat stops it without touching the row or storage."""
    task_id = submit(ctx, account, track).id

    def stall_and_be_taken_over(progress: Callable[[float], None]) -> None:
        clock.advance(ctx.settings.lease_seconds + 1)
        with ctx.db.write() as session:
            assert leases.claim_wav(session, task_id, "new-owner", ctx.settings.lease_seconds)
        progress(0.3)  # the heartbeat is due: its renewal finds the lease gone

    converter.meanwhile_next(stall_and_be_taken_over)
    work(ctx, dispatcher)

    row = task_row(ctx, task_id)
    assert row.status == WavStatus.RUNNING and row.lease_owner == "new-owner"
    assert row.attempts == 2 and row.progress == 0.0
    assert ctx.storage.size(f"wav/{task_id}.wav") is None
    assert not list(ctx.settings.scratch_dir.glob("*.part"))
    assert events.of("conversion_finished") == [Outcome.LEASE_LOST]
    assert balance(ctx, account) == 9


def test_the_heartbeat_renews_the_lease_and_stores_progress(
    ctx: Context,
    account: Account,
    track: TrackRecord,
    converter: FakeConverter,
    dispatcher: RecordingDispatcher,
    clock: Clock,
) -> None:
    task_id = submit(ctx, account, track).id
    seen: list[tuple[float, object]] = []

    def slow_decode(progress: Callable[[float], None]) -> None:
        progress(0.1)  # too soon after the start: not written
        seen.append((task_row(ctx, task_id).progress, task_row(ctx, task_id).lease_expires_at))
        clock.advance(conversion.RENEW_EVERY_SECONDS)
        progress(0.123456)
        seen.append((task_row(ctx, task_id).progress, task_row(ctx, task_id).lease_expires_at))

    converter.meanwhile_next(slow_decode)
    work(ctx, dispatcher)
    lease = timedelta(seconds=ctx.settings.lease_seconds)
    assert seen[0][0] == 0.0
    assert seen[1] == (0.1235, clock.now() + lease)
    assert task_row(ctx, task_id).status == WavStatus.SUCCESS


@pytest.mark.parametrize(
    ("options", "measured"),
    [({"loudness": True}, True), ({"preset": "distribution"}, True), ({"bit_depth": 24}, False)],
    ids=["asked", "distribution-preset", "not-asked"],
)
def test_the_worker_measures_loudness_only_when_asked(
    ctx: Context,
    account: Account,
    track: TrackRecord,
    converter: FakeConverter,
    dispatcher: RecordingDispatcher,
    options: dict[str, object],
    measured: bool,
) -> None:
    submit(ctx, account, track, options=options)
    work(ctx, dispatcher)
    (call,) = converter.calls
    assert call.options["loudness"] is measured


@pytest.mark.settings(measure_loudness=True)
def test_the_operator_can_measure_loudness_in_every_conversion(
    ctx: Context,
    account: Account,
    track: TrackRecord,
    converter: FakeConverter,
    dispatcher: RecordingDispatcher,
) -> None:
    submit(ctx, account, track)
    work(ctx, dispatcher)
    (call,) = converter.calls
    assert call.options["loudness"] is True
