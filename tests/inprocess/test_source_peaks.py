"""A source's waveform peaks (``core.source_peaks``, ``core.peaks``): measured after the
import by a job that workers claim, share fairly and recover like conversions; stored beside
the source, read by its owner only, and gone wherever the source goes."""

from __future__ import annotations

import pytest

from wavforge.audio import LimitExceeded
from wavforge.core import deletion, leases, orphans, peaks, recovery, retention, source_peaks
from wavforge.core.context import Context
from wavforge.core.fair_share import claim_next
from wavforge.core.records import TrackRecord
from wavforge.core.states import PeaksStatus
from wavforge.core.telemetry import PurgeKind
from wavforge.db.models import PeaksJob, Track
from wavforge.errors import NotFound
from wavforge.storage import StorageError

from .fakes import Clock, EventLog, FakeConverter, RecordingDispatcher
from .support import Account, new_account, new_track


def measure(ctx: Context, dispatcher: RecordingDispatcher) -> int:
    """Run every peaks message sent so far, as a worker would; returns how many."""
    messages = dispatcher.take_peaks()
    for track_id in messages:
        source_peaks.run(ctx, track_id)
    return len(messages)


def job(ctx: Context, track_id: str) -> PeaksJob | None:
    with ctx.db.read() as session:
        return session.get(PeaksJob, track_id)


def source_key(ctx: Context, track_id: str) -> str:
    with ctx.db.read() as session:
        return session.get_one(Track, track_id).source_key


def stored_peaks(ctx: Context, track_id: str) -> bool:
    return ctx.storage.size(peaks.source_peaks_key(source_key(ctx, track_id))) is not None


def test_an_import_queues_its_peaks_which_a_worker_stores_beside_the_source(
    ctx: Context,
    account: Account,
    dispatcher: RecordingDispatcher,
    converter: FakeConverter,
) -> None:
    track = new_track(ctx, account)
    assert dispatcher.peaks == [track.id] and converter.measured == []  # the import waits not
    with pytest.raises(NotFound, match="not measured yet"):
        peaks.read_source(ctx, account.id, track.id)

    assert measure(ctx, dispatcher) == 1
    key = source_key(ctx, track.id)
    assert sorted(ctx.storage.keys("sources/")) == [key, f"sources/{track.id}.peaks.json"]
    assert converter.measured[0].options["limits"] == ctx.settings.audio_limits()
    document = peaks.read_source(ctx, account.id, track.id)
    assert (document["version"], document["bits"], document["channels"]) == (2, 8, 2)
    assert document["samples_per_pixel"] == 256 and document["length"] == 18
    found = job(ctx, track.id)
    assert found is not None and found.status == PeaksStatus.DONE and found.attempts == 1
    with pytest.raises(NotFound, match="no track"):  # another account's track
        peaks.read_source(ctx, new_account(ctx).id, track.id)
    assert measure(ctx, dispatcher) == 0 and source_peaks.run(ctx, track.id) is None  # done


def test_the_keys_of_peaks_take_the_place_of_the_audios_suffix() -> None:
    assert peaks.source_peaks_key("sources/abc.mp3") == "sources/abc.peaks.json"
    assert peaks.source_peaks_key("sources/abc.audio") == "sources/abc.peaks.json"
    assert peaks.peaks_key(peaks.wav_key("t")) == "wav/t.peaks.json"


def test_a_source_that_cannot_be_measured_keeps_its_track_without_peaks(
    ctx: Context,
    account: Account,
    track: TrackRecord,
    converter: FakeConverter,
    dispatcher: RecordingDispatcher,
) -> None:
    converter.fail_next(LimitExceeded("audio is longer than the duration limit"))
    measure(ctx, dispatcher)
    found = job(ctx, track.id)
    assert found is not None and found.status == PeaksStatus.FAILED
    assert found.error_message is not None and "duration limit" in found.error_message
    assert not stored_peaks(ctx, track.id)
    with pytest.raises(NotFound):
        peaks.read_source(ctx, account.id, track.id)


def test_a_store_that_fails_for_a_moment_hands_the_job_back(
    ctx: Context,
    account: Account,
    track: TrackRecord,
    dispatcher: RecordingDispatcher,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    put = ctx.storage.put

    def broken(key: str, source: object) -> None:
        raise StorageError("the bucket is away")

    monkeypatch.setattr(ctx.storage, "put", broken)
    measure(ctx, dispatcher)
    found = job(ctx, track.id)
    assert found is not None and found.status == PeaksStatus.PENDING and found.attempts == 1
    assert recovery.sweep(ctx).peaks == 0  # not in a tight loop: due a lease later

    monkeypatch.setattr(ctx.storage, "put", put)
    clock.advance(ctx.settings.lease_seconds + 1)
    assert recovery.sweep(ctx).peaks == 1
    measure(ctx, dispatcher)
    assert stored_peaks(ctx, track.id)


def test_a_lost_job_is_sent_again_and_given_up_after_the_attempts(
    ctx: Context,
    account: Account,
    track: TrackRecord,
    dispatcher: RecordingDispatcher,
    clock: Clock,
) -> None:
    """Workers that die mid-measurement: the lease runs out, the sweep sends the job again,
    and after ``max_attempts`` runs it fails for good rather than killing workers forever."""
    dispatcher.take_peaks()
    for attempt in range(ctx.settings.max_attempts):
        with ctx.db.write() as session:
            owner = f"dead-{attempt}"
            assert leases.claim(session, track.id, owner, ctx.settings.lease_seconds, PeaksJob)
        assert recovery.sweep(ctx).peaks == 0  # still leased
        clock.advance(ctx.settings.lease_seconds + 1)
        assert recovery.sweep(ctx).peaks == 1
    measure(ctx, dispatcher)
    found = job(ctx, track.id)
    assert found is not None and found.status == PeaksStatus.FAILED
    assert found.error_message == "gave up after repeated worker failures"


def test_a_free_slot_measures_the_account_with_the_fewest_running(
    ctx: Context, account: Account, clock: Clock
) -> None:
    """One account importing many files delays another's peaks by one measurement a slot."""
    flood = []
    for _ in range(3):
        flood.append(new_track(ctx, account).id)
        clock.advance(1)
    patient = new_account(ctx, name="patient")
    single = new_track(ctx, patient).id

    def next_slot(woken_for: str) -> str | None:
        clock.advance(1)
        with ctx.db.write() as session:
            lease = ctx.settings.lease_seconds
            return claim_next(session, woken_for, "slot", lease, PeaksJob)

    assert next_slot(flood[2]) == flood[0]
    assert next_slot(flood[2]) == single
    assert next_slot(flood[2]) == flood[1]
    assert next_slot(single) == flood[2]
    assert next_slot(single) is None


def test_deleting_a_track_deletes_its_peaks_and_its_job(
    ctx: Context, account: Account, track: TrackRecord, dispatcher: RecordingDispatcher
) -> None:
    measure(ctx, dispatcher)
    assert stored_peaks(ctx, track.id)
    deletion.delete_track(ctx, account.id, track.id)
    assert list(ctx.storage.keys()) == [] and job(ctx, track.id) is None
    with pytest.raises(NotFound):
        peaks.read_source(ctx, account.id, track.id)


@pytest.mark.settings(source_retention_seconds=3600)
def test_an_expired_source_takes_its_peaks(
    ctx: Context,
    account: Account,
    track: TrackRecord,
    dispatcher: RecordingDispatcher,
    clock: Clock,
) -> None:
    measure(ctx, dispatcher)
    clock.advance(3601)
    assert retention.purge(ctx).expired_tracks_deleted == 1
    assert list(ctx.storage.keys()) == []


def test_a_track_deleted_while_measured_leaves_no_peaks(
    ctx: Context,
    account: Account,
    track: TrackRecord,
    converter: FakeConverter,
    dispatcher: RecordingDispatcher,
) -> None:
    converter.meanwhile_next(lambda _progress: deletion.delete_track(ctx, account.id, track.id))
    measure(ctx, dispatcher)
    assert list(ctx.storage.keys()) == []


def test_a_track_deleted_while_measured_stops_the_measurement_at_its_next_beat(
    ctx: Context,
    account: Account,
    track: TrackRecord,
    converter: FakeConverter,
    dispatcher: RecordingDispatcher,
    clock: Clock,
) -> None:
    def delete_then_beat(progress: object) -> None:
        deletion.delete_track(ctx, account.id, track.id)
        clock.advance(leases.RENEW_EVERY_SECONDS)
        progress(0.5)  # type: ignore[operator]  # the heartbeat finds the job gone

    converter.meanwhile_next(delete_then_beat)
    measure(ctx, dispatcher)  # LeaseLost ends the run quietly
    assert list(ctx.storage.keys()) == []


@pytest.mark.settings(measure_source_peaks=False)
def test_the_operator_may_turn_source_peaks_off(
    ctx: Context, account: Account, track: TrackRecord, dispatcher: RecordingDispatcher
) -> None:
    assert dispatcher.peaks == [] and job(ctx, track.id) is None


def test_an_import_succeeds_when_the_queue_is_down(
    ctx: Context, account: Account, dispatcher: RecordingDispatcher, clock: Clock
) -> None:
    dispatcher.down = True
    track = new_track(ctx, account)  # the peaks message is lost, the import is not
    dispatcher.down = False
    clock.advance(ctx.settings.lease_seconds + 1)
    assert recovery.sweep(ctx).peaks == 1 and dispatcher.peaks == [track.id]


def test_a_stopping_worker_hands_back_its_peaks_jobs(
    ctx: Context, account: Account, track: TrackRecord, dispatcher: RecordingDispatcher
) -> None:
    dispatcher.take_peaks()
    mine = f"{leases.process_identity()}1:abcd"
    with ctx.db.write() as session:
        assert leases.claim(session, track.id, mine, ctx.settings.lease_seconds, PeaksJob)
    assert recovery.hand_back(ctx, leases.process_identity()) == []  # no conversions
    found = job(ctx, track.id)
    assert found is not None and found.status == PeaksStatus.PENDING and found.attempts == 0
    assert dispatcher.peaks == [track.id]


def test_peaks_whose_source_is_gone_are_reaped(
    ctx: Context, account: Account, dispatcher: RecordingDispatcher, events: EventLog
) -> None:
    """A measurement that stored its peaks just as its track's source was erased (and then
    died) leaves peaks no source has: the reaper deletes them, and only them."""
    kept, erased = new_track(ctx, account), new_track(ctx, account)
    measure(ctx, dispatcher)
    orphan = peaks.source_peaks_key(source_key(ctx, erased.id))
    deletion.delete_track(ctx, account.id, erased.id)
    leftover = ctx.settings.scratch_dir / "leftover.json"
    leftover.write_text("{}")
    ctx.storage.put(orphan, leftover)

    assert orphans.reap(ctx).orphans_deleted == 1
    assert ctx.storage.size(orphan) is None and stored_peaks(ctx, kept.id)
    assert ("purged", (PurgeKind.ORPHAN_PEAKS, 1)) in events.events
