"""Tracks and their files (``core.tracks``, ``history``, ``files``, ``deletion``, ``orphans``):
imports that store all or nothing, listings, downloads, deletion, and files no record holds."""

from __future__ import annotations

import pytest

from wavforge.core import (
    conversion,
    deletion,
    files,
    history,
    leases,
    lookup,
    orphans,
    retention,
    tracks,
)
from wavforge.core.context import Context
from wavforge.core.records import MusicRecord, TrackRecord, WavRecord
from wavforge.core.states import FailureCode, WavStatus
from wavforge.core.telemetry import PurgeKind
from wavforge.errors import Conflict, Gone, InvalidRequest, NotFound, TooFrequent

from .fakes import NOT_AUDIO, Clock, EventLog, FakeProber, RecordingDispatcher
from .support import Account, new_account, new_track, submit, task_row, work


def test_an_import_with_one_bad_file_stores_nothing(
    ctx: Context, account: Account, prober: FakeProber
) -> None:
    scratch = ctx.settings.scratch_dir
    (scratch / "a").write_bytes(b"ID3 good")
    (scratch / "b").write_bytes(NOT_AUDIO + b" at all")
    staged = [tracks.StagedFile(scratch / "a", "a.mp3"), tracks.StagedFile(scratch / "b", "b.mp3")]
    with pytest.raises(InvalidRequest, match=r"b\.mp3: the file has no audio stream"):
        tracks.import_files(ctx, account.id, staged, tracks.ImportMeta())
    assert list(ctx.storage.keys("sources/")) == [] and list(scratch.iterdir()) == []
    assert history.tracks(ctx, account.id) == [] and len(prober.probed) == 2


def test_imported_tracks_are_listed_and_found(ctx: Context, account: Account) -> None:
    first, second = new_track(ctx, account), new_track(ctx, account)
    music = lookup.any_task(ctx, account.id, first.music_task_id)
    assert isinstance(music, MusicRecord) and [t.id for t in music.tracks] == [first.id]
    assert music.tracks[0].title == "Song" and music.tracks[0].duration == 4.0
    listed = history.tracks(ctx, account.id)
    assert {listing.track.id for listing in listed} == {first.id, second.id}
    older = history.tracks(ctx, account.id, before=listed[0].track.id)
    assert [listing.track.id for listing in older] == [listed[1].track.id]
    assert history.track(ctx, account.id, first.id).source_sha256 is not None
    with pytest.raises(NotFound):
        lookup.any_task(ctx, new_account(ctx).id, first.music_task_id)


def test_listings_and_usage_follow_the_tasks(
    ctx: Context, account: Account, track: TrackRecord, dispatcher: RecordingDispatcher
) -> None:
    task_id = submit(ctx, account, track).id
    assert history.track(ctx, account.id, track.id).wav_status == WavStatus.PENDING
    work(ctx, dispatcher)
    listing = history.track(ctx, account.id, track.id)
    assert listing.wav_task_id == task_id and listing.wav_status == WavStatus.SUCCESS
    found = lookup.any_task(ctx, account.id, task_id)
    assert isinstance(found, WavRecord) and found.status == WavStatus.SUCCESS
    assert [record.id for record in history.wav_tasks(ctx, account.id)] == [task_id]
    usage = history.usage(ctx, account.id)
    assert usage.tracks == 1 and usage.wav_tasks == {WavStatus.SUCCESS: 1}
    assert usage.credits_spent == 1


def test_downloads_resolve_until_the_wav_expires(
    ctx: Context,
    account: Account,
    track: TrackRecord,
    dispatcher: RecordingDispatcher,
    clock: Clock,
) -> None:
    task_id = submit(ctx, account, track).id
    with pytest.raises(Gone):  # not converted yet
        files.resolve(ctx, files.WAV, task_id)
    work(ctx, dispatcher)
    wav = files.resolve(ctx, files.WAV, task_id)
    assert wav.content_type == "audio/wav" and wav.filename == "Song.wav"
    assert wav.size == task_row(ctx, task_id).wav_bytes
    source = files.resolve(ctx, files.SOURCE, track.id)
    assert source.content_type == "audio/mpeg" and source.filename == "Song.mp3"
    with pytest.raises(NotFound):
        files.resolve(ctx, files.WAV, "no-such-task")
    clock.advance(ctx.settings.retention_seconds)
    with pytest.raises(Gone):
        files.resolve(ctx, files.WAV, task_id)


def test_a_track_is_deleted_with_its_files_once_no_conversion_runs(
    ctx: Context, account: Account, track: TrackRecord, dispatcher: RecordingDispatcher
) -> None:
    task_id = submit(ctx, account, track).id
    with pytest.raises(Conflict) as refused:
        deletion.delete_track(ctx, account.id, track.id)
    assert refused.value.data == task_id
    work(ctx, dispatcher)

    deleted = deletion.delete_track(ctx, account.id, track.id)
    assert deleted.track_ids == [track.id] and deleted.wav_task_ids == [task_id]
    assert list(ctx.storage.keys()) == []
    assert task_row(ctx, task_id).wav_key is None
    with pytest.raises(Gone):
        files.resolve(ctx, files.SOURCE, track.id)
    with pytest.raises(NotFound):  # a deleted track answers as one that never was
        deletion.delete_track(ctx, account.id, track.id)
    assert deletion.unfinished_erasures(ctx) == []


def test_a_wav_no_record_points_to_is_reaped(
    ctx: Context, account: Account, track: TrackRecord, events: EventLog
) -> None:
    """A worker stored the WAV and then lost the task: the file is an orphan once the task
    has ended without it, never while the task may still claim it."""
    ended = submit(ctx, account, track).id
    waiting = submit(ctx, account, new_track(ctx, account)).id
    with ctx.db.write() as session:
        assert leases.claim_wav(session, ended, "worker", ctx.settings.lease_seconds)
    assert conversion.fail(ctx, ended, "worker", FailureCode.SERVER_ERROR, "failed")
    leftover = ctx.settings.scratch_dir / "leftover.wav"
    for task_id in (ended, waiting):
        for name in (f"wav/{task_id}.wav", f"wav/{task_id}.peaks.json"):
            leftover.write_bytes(b"RIFF")
            ctx.storage.put(name, leftover)

    assert orphans.reap(ctx).orphans_deleted == 2  # the WAV and its peaks
    assert sorted(ctx.storage.keys("wav/")) == [f"wav/{waiting}.peaks.json", f"wav/{waiting}.wav"]
    assert ("purged", (PurgeKind.ORPHAN_WAV, 1)) in events.events


@pytest.mark.settings(rate_limit="3/second")
def test_the_rate_limit_counts_per_key(ctx: Context) -> None:
    for _ in range(3):
        ctx.limiter.hit("key-a")
    with pytest.raises(TooFrequent) as refused:
        ctx.limiter.hit("key-a")
    assert refused.value.headers["Retry-After"] == "1"
    ctx.limiter.hit("key-b")  # another key has its own window


@pytest.mark.settings(source_retention_seconds=3600)
def test_sources_expire_after_the_operators_retention_but_not_mid_conversion(
    ctx: Context, account: Account, dispatcher: RecordingDispatcher, clock: Clock
) -> None:
    idle, busy = new_track(ctx, account), new_track(ctx, account)
    submit(ctx, account, busy)
    clock.advance(3600)
    assert retention.purge(ctx).expired_tracks_deleted == 0  # an hour old: kept
    clock.advance(1)
    assert retention.purge(ctx).expired_tracks_deleted == 1  # the converting one waits
    with pytest.raises(Gone):
        files.resolve(ctx, files.SOURCE, idle.id)
    assert files.resolve(ctx, files.SOURCE, busy.id).size > 0
    work(ctx, dispatcher)
    assert retention.purge(ctx).expired_tracks_deleted == 1
    assert list(ctx.storage.keys("sources/")) == [] and list(ctx.storage.keys("wav/")) == []
