"""Claims and leases (``core.leases``, ``core.fair_share``, ``core.recovery``): one owner at a
time, a lease that runs out frees the row, and the sweep and hand-back give lost work back."""

from __future__ import annotations

import time as real_time
from datetime import timedelta
from pathlib import Path

import pytest

from wavforge.core import conversion, leases, peaks, recovery
from wavforge.core.context import Context
from wavforge.core.fair_share import claim_next
from wavforge.core.records import TrackRecord
from wavforge.core.states import FailureCode, WavStatus

from .fakes import Clock, EventLog, RecordingDispatcher
from .support import Account, balance, new_account, new_track, submit, task_row, work


def claim(ctx: Context, task_id: str, owner: str) -> bool:
    with ctx.db.write() as session:
        return leases.claim_wav(session, task_id, owner, ctx.settings.lease_seconds)


def renew(ctx: Context, task_id: str, owner: str, progress: float = 0.5) -> None:
    with ctx.db.write() as session:
        leases.renew_wav(session, task_id, owner, ctx.settings.lease_seconds, progress)


def test_a_leased_task_has_one_owner_until_its_lease_runs_out(
    ctx: Context, account: Account, track: TrackRecord, clock: Clock
) -> None:
    task_id = submit(ctx, account, track).id
    assert claim(ctx, task_id, "worker-a")
    row = task_row(ctx, task_id)
    assert row.status == WavStatus.RUNNING and row.lease_owner == "worker-a"
    assert row.attempts == 1 and row.started_at == clock.now()
    assert row.lease_expires_at == clock.now() + timedelta(seconds=ctx.settings.lease_seconds)

    assert not claim(ctx, task_id, "worker-b")  # leased
    clock.advance(ctx.settings.lease_seconds)
    assert not claim(ctx, task_id, "worker-b")  # the lease lasts to its last instant
    clock.advance(0.001)
    assert claim(ctx, task_id, "worker-b")  # run out: taken over, and counted again
    row = task_row(ctx, task_id)
    assert row.lease_owner == "worker-b" and row.attempts == 2


def test_renewing_extends_the_lease_and_a_lost_lease_cannot_be_renewed(
    ctx: Context, account: Account, track: TrackRecord, clock: Clock
) -> None:
    task_id = submit(ctx, account, track).id
    assert claim(ctx, task_id, "worker-a")
    clock.advance(ctx.settings.lease_seconds - 1)
    renew(ctx, task_id, "worker-a", progress=0.25)
    row = task_row(ctx, task_id)
    assert row.progress == 0.25
    assert row.lease_expires_at == clock.now() + timedelta(seconds=ctx.settings.lease_seconds)
    clock.advance(ctx.settings.lease_seconds - 1)
    assert not claim(ctx, task_id, "worker-b")  # renewed: still worker-a's

    clock.advance(2)
    assert claim(ctx, task_id, "worker-b")
    with pytest.raises(leases.LeaseLost):
        renew(ctx, task_id, "worker-a")
    assert task_row(ctx, task_id).lease_owner == "worker-b"


def test_claim_expired_takes_only_a_running_task_whose_lease_ran_out(
    ctx: Context, account: Account, track: TrackRecord, clock: Clock
) -> None:
    task_id = submit(ctx, account, track).id
    lease = ctx.settings.lease_seconds
    with ctx.db.write() as session:
        assert not leases.claim_expired(session, task_id, "worker-b", lease)  # pending
    assert claim(ctx, task_id, "worker-a")
    clock.advance(lease + 1)
    with ctx.db.write() as session:
        assert leases.claim_expired(session, task_id, "worker-b", lease)


def test_the_old_owner_cannot_finish_a_task_taken_over(
    ctx: Context, account: Account, track: TrackRecord, clock: Clock, events: EventLog
) -> None:
    task_id = submit(ctx, account, track).id
    assert claim(ctx, task_id, "worker-a")
    clock.advance(ctx.settings.lease_seconds + 1)
    assert claim(ctx, task_id, "worker-b")

    assert not conversion.fail(ctx, task_id, "worker-a", FailureCode.SERVER_ERROR, "late")
    row = task_row(ctx, task_id)
    assert row.status == WavStatus.RUNNING and row.lease_owner == "worker-b"
    assert balance(ctx, account) == 9 and events.of("credits_refunded") == []


def test_the_sweep_sends_expired_leases_back_to_the_queue(
    ctx: Context,
    account: Account,
    track: TrackRecord,
    clock: Clock,
    dispatcher: RecordingDispatcher,
    events: EventLog,
) -> None:
    """A worker that died mid-conversion: its lease runs out, the sweep re-dispatches the
    task, and the next run takes it over and finishes it once."""
    task_id = submit(ctx, account, track).id
    dispatcher.take_converts()
    assert claim(ctx, task_id, "dead-worker")
    assert recovery.sweep(ctx).conversions == 0  # still leased

    clock.advance(ctx.settings.lease_seconds + 1)
    assert recovery.sweep(ctx).conversions == 1
    assert work(ctx, dispatcher) == 1
    row = task_row(ctx, task_id)
    assert row.status == WavStatus.SUCCESS and row.attempts == 2
    assert events.of("conversion_finished") == [conversion.Outcome.SUCCEEDED]
    assert recovery.sweep(ctx).conversions == 0


def test_a_stopping_worker_hands_back_its_tasks_without_counting_them(
    ctx: Context, account: Account, track: TrackRecord, dispatcher: RecordingDispatcher
) -> None:
    task_id = submit(ctx, account, track).id
    other = submit(ctx, account, new_track(ctx, account)).id
    dispatcher.take_converts()
    mine = f"{leases.process_identity()}1:abcd"
    assert claim(ctx, task_id, mine)
    assert claim(ctx, other, "another-host:1:ffffff:1:abcd")

    assert recovery.hand_back(ctx, leases.process_identity()) == [task_id]
    row = task_row(ctx, task_id)
    assert row.status == WavStatus.PENDING and row.lease_owner is None and row.attempts == 0
    assert dispatcher.converts == [task_id]
    assert task_row(ctx, other).lease_owner == "another-host:1:ffffff:1:abcd"
    with pytest.raises(leases.LeaseLost):  # the run still going here stops at its next beat
        renew(ctx, task_id, mine)


def test_a_free_slot_goes_to_the_account_with_the_fewest_running(
    ctx: Context, account: Account, clock: Clock
) -> None:
    """Fair share: one account's queue of tasks delays another's single task by at most
    one conversion per slot, whichever message woke the worker."""
    busy = []
    for _ in range(3):
        busy.append(submit(ctx, account, new_track(ctx, account)).id)
        clock.advance(1)
    patient = new_account(ctx, name="patient")
    single = submit(ctx, patient, new_track(ctx, patient)).id

    def next_slot(woken_for: str) -> str | None:
        clock.advance(1)
        with ctx.db.write() as session:
            return claim_next(session, woken_for, "slot", ctx.settings.lease_seconds)

    assert next_slot(busy[2]) == busy[0]  # the account waiting longest, its oldest task
    assert next_slot(busy[2]) == single  # the account with the fewest running
    assert next_slot(busy[2]) == busy[1]  # one each running: the one served longest ago
    assert next_slot(single) == busy[2]  # whichever task's message woke the worker
    assert next_slot(single) is None  # nothing left to run


@pytest.mark.settings(lease_seconds=0.3)
def test_the_lease_is_renewed_while_the_wav_is_stored(
    ctx: Context,
    account: Account,
    track: TrackRecord,
    clock: Clock,
    dispatcher: RecordingDispatcher,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A WAV whose upload outlasts the lease stays its worker's: the sweep must not hand the
    task to a second worker while the first still stores it."""
    task_id = submit(ctx, account, track).id
    store = ctx.storage.put
    renewed_while_storing: list[bool] = []

    def slow_put(key: str, source: Path) -> None:
        if key == peaks.wav_key(task_id):
            clock.advance(0.25)  # most of the lease passes during the upload
            wanted = clock.now() + timedelta(seconds=ctx.settings.lease_seconds)
            deadline = real_time.perf_counter() + 5
            while task_row(ctx, task_id).lease_expires_at != wanted:
                if real_time.perf_counter() > deadline:
                    break
                real_time.sleep(0.01)
            renewed_while_storing.append(task_row(ctx, task_id).lease_expires_at == wanted)
        store(key, source)

    monkeypatch.setattr(ctx.storage, "put", slow_put)
    work(ctx, dispatcher)
    assert renewed_while_storing == [True]
    assert task_row(ctx, task_id).status == WavStatus.SUCCESS
