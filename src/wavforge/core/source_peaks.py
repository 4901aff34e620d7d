"""An imported source's waveform peaks, measured in the background a moment after its import.

Why not during the import: measuring means decoding the whole file, and an import may be as
long as the duration limit allows (a 4-hour MP3 takes over ten seconds of a core: about
0.16 s per three minutes, measured on a 2-core box). The import's own check decodes one
frame in a small pool of probe processes shared by every API request; a whole decode there
would make each import as slow as a conversion and let one key's big files hold the probers
every other key's imports wait for. So the import writes one
``PeaksJob`` row per track in its own transaction and sends a message; a worker measures the
source in a converter child, with a conversion's memory, CPU and wall-clock limits, and stores
the peaks beside the source (``core.peaks``). Until then (and for good if the source cannot be
measured) the peaks endpoint answers 404 and the console draws a flat line, as it does for a
WAV without peaks. Nothing here ever fails an import: the import has answered before this runs.

The row, not the queue, is the truth, as for conversions: a job is claimed with a lease
(``core.leases``), a slot takes the job the fair share picks (``core.fair_share``: one
account's thousand imports delay another's peaks by at most one measurement per slot), the
sweep sends lost ones again and runs are capped at ``WAVFORGE_MAX_ATTEMPTS``. The messages go
at a lower priority than conversions and callbacks, so peaks never keep a conversion waiting
in the queue. Deleting a track deletes its job, and a measurement stores its peaks in the
transaction that records it done, so the two never cross: peaks never outlive their source.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from wavforge import audio
from wavforge.core import clock, peaks
from wavforge.core.context import Context
from wavforge.core.conversion import TRANSIENT
from wavforge.core.fair_share import claim_next
from wavforge.core.leases import LeaseLost, heartbeat, renew, worker_identity
from wavforge.core.states import PeaksStatus
from wavforge.db.models import PeaksJob, Track
from wavforge.storage import StorageMissing

log = logging.getLogger(__name__)


def add_jobs(ctx: Context, session: Session, tracks: list[Track]) -> list[str]:
    """Write the peaks jobs of newly imported tracks into the import's transaction; returns
    their ids, to :func:`dispatch` once it is committed (none when the operator turned
    source peaks off)."""
    if not ctx.settings.measure_source_peaks:
        return []
    now = clock.now()
    session.add_all(
        PeaksJob(
            id=track.id,
            account_id=track.account_id,
            status=PeaksStatus.PENDING,
            attempts=0,
            dispatched_at=now,
            created_at=now,
        )
        for track in tracks
    )
    return [track.id for track in tracks]


def dispatch(ctx: Context, track_ids: list[str]) -> None:
    """Wake workers for committed jobs. A message that cannot be sent is the sweep's to send
    again: the import has succeeded, and its peaks only come later."""
    for track_id in track_ids:
        try:
            ctx.dispatch.measure_peaks(track_id)
        except Exception:
            log.exception("could not enqueue the peaks of track %s; the sweep will", track_id)
            return


def cancel(session: Session, track_ids: list[str]) -> None:
    """Drop the jobs of tracks being deleted (in the deleting transaction): nothing is left
    to measure, and a measurement still running loses its lease and stops."""
    session.execute(delete(PeaksJob).where(PeaksJob.id.in_(track_ids)))


def run(ctx: Context, woken_for: str) -> None:
    """Measure the source a free slot should take now (``fair_share``), and store its peaks."""
    owner = worker_identity()
    with ctx.db.write() as session:
        track_id = claim_next(session, woken_for, owner, ctx.settings.lease_seconds, PeaksJob)
        if track_id is None:
            return
        attempts = session.get_one(PeaksJob, track_id).attempts
        source = session.get_one(Track, track_id).source_key
    if attempts > ctx.settings.max_attempts:
        _end(ctx, track_id, owner, "gave up after repeated worker failures")
        return
    _measure(ctx, track_id, owner, source)


def _measure(ctx: Context, track_id: str, owner: str, source: str) -> None:
    """Measure in a converter child and store the document; every way it ends is recorded
    on the job's row, never raised."""
    try:
        beat, limits = _heartbeat(ctx, track_id, owner), ctx.settings.audio_limits()
        with ctx.storage.local_copy(source) as local:
            waveform = ctx.converter.measure_peaks(local, on_progress=beat, limits=limits)
        _store(ctx, track_id, owner, peaks.source_peaks_key(source), waveform)
    except LeaseLost:
        log.info("track %s: its peaks job was cancelled or taken over", track_id)
    except audio.AudioError as error:
        _end(ctx, track_id, owner, f"source not measurable: {error}")
    except StorageMissing:
        _end(ctx, track_id, owner, "source gone from storage")
    except TRANSIENT as error:  # storage or the database failed for a moment
        kind = type(error).__name__
        log.warning("track %s: %s; peaks handed back for another attempt", track_id, kind)
        _hand_back(ctx, track_id, owner)
    except Exception:
        log.exception("track %s: measuring its peaks crashed", track_id)
        _end(ctx, track_id, owner, "server error while measuring")


def _store(ctx: Context, track_id: str, owner: str, key: str, waveform: audio.Waveform) -> None:
    """Record the job done and store the peaks in one transaction. Deleting the track drops
    the job in its own transaction, so it either waits for this one (and then erases the
    peaks with the source) or makes this one store nothing: peaks never outlive their
    source. The document is small (a few hundred KB at most), so the wait is short."""
    with ctx.db.write() as session:
        if not _finish(session, track_id, owner, _ended(None)):
            raise LeaseLost(track_id)
        peaks.store(ctx, key, waveform, _scratch_path(ctx, track_id))


def _heartbeat(ctx: Context, track_id: str, owner: str) -> audio.ProgressCallback:
    def renew_job(session: Session, _fraction: float) -> None:
        renew(session, track_id, owner, ctx.settings.lease_seconds, PeaksJob)

    return heartbeat(ctx, renew_job)


def _scratch_path(ctx: Context, track_id: str) -> Path:
    """One name per track, so a retried job overwrites a dead worker's leftovers."""
    return ctx.settings.scratch_dir / f"{track_id}.peaks.part"


def _end(ctx: Context, track_id: str, owner: str, error: str) -> None:
    """Record the job failed for good (unless it was no longer ours)."""
    log.warning("track %s: no waveform peaks (%s)", track_id, error)
    with ctx.db.write() as session:
        _finish(session, track_id, owner, _ended(error))


def _ended(error: str | None) -> dict[str, object]:
    """The row of a job done (``error`` None) or failed."""
    return {
        "status": PeaksStatus.FAILED if error else PeaksStatus.DONE,
        "error_message": error,
        "completed_at": clock.now(),
        "lease_owner": None,
        "lease_expires_at": None,
    }


def _hand_back(ctx: Context, track_id: str, owner: str) -> None:
    """Pending again, dispatched now: the sweep sends it once it is due (attempts stay)."""
    values = {
        "status": PeaksStatus.PENDING,
        "lease_owner": None,
        "lease_expires_at": None,
        "dispatched_at": clock.now(),
    }
    try:
        with ctx.db.write() as session:
            _finish(session, track_id, owner, values)
    except TRANSIENT:  # the database itself is away: the lease runs out and the sweep acts
        return


def _finish(session: Session, track_id: str, owner: str, values: Mapping[str, object]) -> bool:
    result = session.execute(
        update(PeaksJob)
        .where(
            PeaksJob.id == track_id,
            PeaksJob.status == PeaksStatus.RUNNING,
            PeaksJob.lease_owner == owner,
        )
        .values(**values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
