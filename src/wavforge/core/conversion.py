"""A conversion, as a worker runs it: claim the row, convert, store, finish — each state change
one guarded transaction, so running the same message twice cannot convert twice.

Each run that claimed the task is counted once its end is committed, by outcome
(``wavforge_conversions_total``, ``wavforge_conversion_duration_seconds``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from wavforge import audio
from wavforge.audio.options import dither_seed
from wavforge.core import clock, ledger, peaks, telemetry
from wavforge.core.context import Context
from wavforge.core.deliveries import enqueue_event
from wavforge.core.fair_share import claim_next
from wavforge.core.leases import (
    RENEW_EVERY_SECONDS,
    LeaseLost,
    heartbeat,
    renew_wav,
    worker_identity,
)
from wavforge.core.records import wav_record
from wavforge.core.states import FailureCode, WavStatus
from wavforge.core.telemetry import ConversionOutcome as Outcome
from wavforge.db.models import Track, WavTask
from wavforge.storage import StorageError, StorageMissing

log = logging.getLogger(__name__)

# Failures of the service's own parts that pass: the task is tried again, not failed.
TRANSIENT: tuple[type[Exception], ...] = (StorageError, OperationalError, InterfaceError)
_OUTCOME_OF_FAILURE = {
    FailureCode.BAD_SOURCE: Outcome.BAD_SOURCE,
    FailureCode.CONVERSION_FAILED: Outcome.CONVERSION_FAILED,
    FailureCode.SERVER_ERROR: Outcome.SERVER_ERROR,
}


def run(ctx: Context, woken_for: str) -> None:
    """Run the conversion a free slot should take now (``fair_share``): the message that woke
    this worker names a task, but not necessarily the one it runs."""
    owner = worker_identity()
    with ctx.db.write() as session:
        task_id = claim_next(session, woken_for, owner, ctx.settings.lease_seconds)
        if task_id is None:
            return
        task = session.get_one(WavTask, task_id)
        track = session.get_one(Track, task.track_id)
        attempts, source_key = task.attempts, track.source_key
        output = audio.OutputOptions(**task.options)  # type: ignore[arg-type]
    if task_id != woken_for:
        log.info("task %s runs before %s, in fair share", task_id, woken_for)
    started = time.monotonic()
    if attempts > ctx.settings.max_attempts:
        outcome = _give_up(ctx, task_id, owner)
    else:
        outcome = _convert(ctx, task_id, owner, source_key, output)
    telemetry.events().conversion_finished(outcome, time.monotonic() - started)


def _give_up(ctx: Context, task_id: str, owner: str) -> Outcome:
    message = "conversion gave up after repeated worker failures"
    if fail(ctx, task_id, owner, FailureCode.SERVER_ERROR, message):
        return Outcome.GAVE_UP
    return Outcome.LEASE_LOST


def _convert(
    ctx: Context, task_id: str, owner: str, source_key: str, output: audio.OutputOptions
) -> Outcome:
    """Convert and record the end; returns how it ended (once recorded: committed)."""
    scratch = _scratch_path(ctx, task_id)
    try:
        with ctx.storage.local_copy(source_key) as source:
            result = ctx.converter.convert(
                source,
                scratch,
                on_progress=_heartbeat(ctx, task_id, owner),
                options=output,
                limits=ctx.settings.audio_limits(),
                dither_seed=dither_seed(task_id),  # converting again writes the same WAV
                loudness=output.measures_loudness(ctx.settings.measure_loudness),
            )
        wav_key = peaks.wav_key(task_id)
        document = scratch.with_suffix(".peaks")
        with _lease_kept(ctx, task_id, owner):
            peaks.store(ctx, peaks.peaks_key(wav_key), result.waveform, document)
            ctx.storage.put(wav_key, scratch)
    except LeaseLost:
        log.warning("task %s: lease lost, leaving it to its new owner", task_id)
        return Outcome.LEASE_LOST
    except audio.UnsupportedAudio as error:
        return _failed(ctx, task_id, owner, FailureCode.BAD_SOURCE, f"unsupported source: {error}")
    except audio.LimitExceeded as error:
        return _failed(ctx, task_id, owner, FailureCode.BAD_SOURCE, f"source refused: {error}")
    except audio.AudioError as error:
        message = f"conversion failed: {error}"
        return _failed(ctx, task_id, owner, FailureCode.CONVERSION_FAILED, message)
    except StorageMissing:
        log.exception("task %s: its source is gone from storage", task_id)
        message = "server error during conversion"
        return _failed(ctx, task_id, owner, FailureCode.SERVER_ERROR, message)
    except TRANSIENT as error:
        # Not the audio's fault: storage or the database failed for a moment. Another run
        # tries again (attempts stay counted and capped), rather than failing it for good.
        log.warning("task %s: %s; handed back for another attempt", task_id, type(error).__name__)
        return _hand_back(ctx, task_id, owner)
    except Exception:
        log.exception("task %s: conversion crashed", task_id)
        message = "server error during conversion"
        return _failed(ctx, task_id, owner, FailureCode.SERVER_ERROR, message)
    else:
        recorded = _succeed(ctx, task_id, owner, wav_key, result)
        return Outcome.SUCCEEDED if recorded else Outcome.LEASE_LOST
    finally:
        scratch.unlink(missing_ok=True)


def _hand_back(ctx: Context, task_id: str, owner: str) -> Outcome:
    """Make the task pending again; the sweep dispatches it once it is due, so a store that
    is down is tried again every few sweeps, not in a tight loop."""
    values = {
        "status": WavStatus.PENDING,
        "progress": 0.0,
        "lease_owner": None,
        "lease_expires_at": None,
        "dispatched_at": clock.now(),
    }
    try:
        with ctx.db.write() as session:
            handed = _finish(session, task_id, owner, values)
    except TRANSIENT:  # the database itself is away: the lease runs out and the sweep acts
        return Outcome.RETRYING
    return Outcome.RETRYING if handed else Outcome.LEASE_LOST


def _failed(ctx: Context, task_id: str, owner: str, code: int, message: str) -> Outcome:
    recorded = fail(ctx, task_id, owner, code, message)
    return _OUTCOME_OF_FAILURE.get(code, Outcome.SERVER_ERROR) if recorded else Outcome.LEASE_LOST


def _scratch_path(ctx: Context, task_id: str) -> Path:
    """One name per task, so a retried conversion overwrites a dead worker's leftovers."""
    return ctx.settings.scratch_dir / f"{task_id}.wav.part"


def _heartbeat(ctx: Context, task_id: str, owner: str) -> Callable[[float], None]:
    """A progress callback that renews the lease and stores progress, a few times a minute."""

    def renew(session: Session, fraction: float) -> None:
        renew_wav(session, task_id, owner, ctx.settings.lease_seconds, round(fraction, 4))

    return heartbeat(ctx, renew)


@contextmanager
def _lease_kept(ctx: Context, task_id: str, owner: str) -> Iterator[None]:
    """Renews the lease while the finished WAV is stored.

    Storing a large WAV (a multipart upload of hundreds of MB) can outlast a lease, and the
    conversion's heartbeat has stopped by then: without this, the sweep would hand the task to
    a second worker while the first still uploads. A lease lost anyway ends the renewals; the
    guarded update that records the end then finds another owner and records nothing.
    """
    stopped = threading.Event()
    interval = min(RENEW_EVERY_SECONDS, ctx.settings.lease_seconds / 3)

    def renew() -> None:
        while not stopped.wait(interval):
            try:
                with ctx.db.write() as session:
                    renew_wav(session, task_id, owner, ctx.settings.lease_seconds, 1.0)
            except LeaseLost:
                return
            except TRANSIENT:  # the database is away for a moment: try at the next beat
                log.warning("task %s: could not renew the lease while storing", task_id)

    keeper = threading.Thread(target=renew, name=f"lease-{task_id}", daemon=True)
    keeper.start()
    try:
        yield
    finally:
        stopped.set()
        keeper.join()


def _succeed(
    ctx: Context, task_id: str, owner: str, wav_key: str, result: audio.ConversionResult
) -> bool:
    """Record the WAV; False if the task was no longer ours to finish."""
    now = clock.now()
    size = result.bytes_written
    values = {
        "status": WavStatus.SUCCESS,
        "wav_key": wav_key,
        "wav_bytes": size,
        "analysis": result.analysis.to_dict(),
        "progress": 1.0,
        "completed_at": now,
        "expires_at": clock.later(ctx.settings.retention_seconds),
        "lease_owner": None,
        "lease_expires_at": None,
    }
    with ctx.db.write() as session:
        if not _finish(session, task_id, owner, values):
            return False
        delivery_id = _announce(ctx, session, task_id)
    log.info("task %s: converted (%d bytes)", task_id, size)
    _dispatch(ctx, delivery_id)
    return True


def fail(ctx: Context, task_id: str, owner: str, code: int, message: str) -> bool:
    """Fail the task, free its track and refund it — all in one transaction, at most once.

    Returns False if the task was no longer ours to finish.
    """
    values = {
        "status": WavStatus.GENERATE_WAV_FAILED,
        "live_track_id": None,
        "error_code": code,
        "error_message": message,
        "completed_at": clock.now(),
        "lease_owner": None,
        "lease_expires_at": None,
    }
    with ctx.db.write() as session:
        if not _finish(session, task_id, owner, values):
            return False
        task = session.get_one(WavTask, task_id)
        refunded = ledger.refund(session, task.account_id, task_id, task.credits_charged)
        delivery_id = _announce(ctx, session, task_id)
    if refunded:  # committed: the credits moved
        telemetry.events().credits_refunded(task.credits_charged)
    log.info("task %s: failed (%s)", task_id, message)
    _dispatch(ctx, delivery_id)
    return True


def _finish(session: Session, task_id: str, owner: str, values: Mapping[str, object]) -> bool:
    result = session.execute(
        update(WavTask)
        .where(
            WavTask.id == task_id, WavTask.status == WavStatus.RUNNING, WavTask.lease_owner == owner
        )
        .values(**values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _announce(ctx: Context, session: Session, task_id: str) -> str | None:
    """Write the task's callback into the outbox, inside the finishing transaction."""
    task = session.get_one(WavTask, task_id, populate_existing=True)
    track = session.get_one(Track, task.track_id)
    return enqueue_event(ctx, session, wav_record(task, track, ctx.links), task.account_id)


def _dispatch(ctx: Context, delivery_id: str | None) -> None:
    if delivery_id is None:
        return
    try:
        ctx.dispatch.deliver(delivery_id)
    except Exception:
        log.exception("could not enqueue delivery %s; the sweep will", delivery_id)
