"""The webhook portal's rules in process: a resend after every try failed, its limits, and
the purge of old deliveries (the POST is :class:`inprocess.fakes.ScriptedReceiver`)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from wavforge.core import deliveries, delivery_log, retention, wav_tasks, webhook_events
from wavforge.core.context import Context
from wavforge.core.records import TrackRecord
from wavforge.core.states import DeliveryStatus, WavStatus
from wavforge.errors import Conflict, NotFound, TooFrequent

from .fakes import Clock, RecordingDispatcher, ScriptedReceiver, unreachable
from .support import CALLBACK, Account, delivery_rows, new_account, submit, work


def failed_for_good(
    ctx: Context, account: Account, track: TrackRecord, dispatcher: RecordingDispatcher,
    receiver: ScriptedReceiver, clock: Clock,
) -> tuple[str, str]:  # fmt: skip
    """A converted Suno task whose callback failed on every try of the schedule."""
    task_id = submit(ctx, account, track, callback_url=CALLBACK).id
    work(ctx, dispatcher)
    (delivery,) = delivery_rows(ctx, task_id)
    schedule = ctx.dialects.named("suno").retry_schedule(ctx.settings)
    receiver.answer(*[unreachable() for _ in range(len(schedule) + 1)])
    deliveries.run(ctx, delivery.id)
    for delay in schedule:
        clock.advance(delay)
        deliveries.run(ctx, delivery.id)
    assert delivery_rows(ctx, task_id)[0].status == DeliveryStatus.FAILED
    return task_id, delivery.id


def test_a_resend_that_gets_through_ends_the_callback_exception(
    ctx: Context, account: Account, track: TrackRecord, dispatcher: RecordingDispatcher,
    receiver: ScriptedReceiver, clock: Clock,
) -> None:  # fmt: skip
    task_id, delivery_id = failed_for_good(ctx, account, track, dispatcher, receiver, clock)
    assert wav_tasks.get_wav(ctx, account.id, task_id).status == WavStatus.CALLBACK_EXCEPTION
    with pytest.raises(NotFound):
        webhook_events.resend(ctx, new_account(ctx).id, delivery_id)  # not theirs
    dispatcher.deliveries.clear()
    webhook_events.resend(ctx, account.id, delivery_id)
    assert dispatcher.deliveries == [(delivery_id, None)]  # woken at once, no delay
    deliveries.run(ctx, delivery_id)
    found = delivery_log.detail(ctx, account.id, delivery_id)
    assert found.delivery.status == DeliveryStatus.DELIVERED
    assert receiver.posts[-1].headers["webhook-id"] == delivery_id
    assert wav_tasks.get_wav(ctx, account.id, task_id).status == WavStatus.SUCCESS


def test_a_failing_resend_after_the_last_try_is_not_retried(
    ctx: Context, account: Account, track: TrackRecord, dispatcher: RecordingDispatcher,
    receiver: ScriptedReceiver, clock: Clock,
) -> None:  # fmt: skip
    task_id, delivery_id = failed_for_good(ctx, account, track, dispatcher, receiver, clock)
    receiver.answer(unreachable())
    webhook_events.resend(ctx, account.id, delivery_id)
    dispatcher.deliveries.clear()
    deliveries.run(ctx, delivery_id)
    (row,) = delivery_rows(ctx, task_id)
    assert row.status == DeliveryStatus.FAILED and row.next_attempt_at is None
    assert dispatcher.deliveries == []
    assert wav_tasks.get_wav(ctx, account.id, task_id).status == WavStatus.CALLBACK_EXCEPTION


def test_resends_are_bounded(ctx: Context, account: Account, receiver: ScriptedReceiver) -> None:
    webhook_id = webhook_events.send_test(ctx, account.id, CALLBACK)
    for _ in range(webhook_events.MAX_TRIES):
        deliveries.run(ctx, webhook_id)
        if len(receiver.posts) < webhook_events.MAX_TRIES:
            webhook_events.resend(ctx, account.id, webhook_id)
    with pytest.raises(Conflict):
        webhook_events.resend(ctx, account.id, webhook_id)
    assert len(delivery_log.detail(ctx, account.id, webhook_id).attempts) == 50


def test_the_purge_forgets_finished_deliveries_after_the_retention(
    ctx: Context, account: Account, receiver: ScriptedReceiver, clock: Clock
) -> None:
    delivered = webhook_events.send_test(ctx, account.id, CALLBACK)
    deliveries.run(ctx, delivered)
    receiver.answer(unreachable())
    pending = webhook_events.send_test(ctx, account.id, CALLBACK)
    deliveries.run(ctx, pending)  # failed once, a retry scheduled
    keep = timedelta(seconds=ctx.settings.retention_seconds)

    assert retention.purge(ctx, clock.now() + keep - timedelta(seconds=1)).deliveries_deleted == 0
    result = retention.purge(ctx, clock.now() + keep + timedelta(seconds=1))
    assert result.deliveries_deleted == 1
    with pytest.raises(NotFound):
        delivery_log.detail(ctx, account.id, delivered)
    assert delivery_log.detail(ctx, account.id, pending).delivery.status == "PENDING"


def test_only_a_few_test_events_may_be_on_their_way(
    ctx: Context, account: Account, receiver: ScriptedReceiver
) -> None:
    sent = [webhook_events.send_test(ctx, account.id, CALLBACK) for _ in range(5)]
    with pytest.raises(TooFrequent) as refused:
        webhook_events.send_test(ctx, account.id, CALLBACK)
    assert refused.value.headers["Retry-After"]
    webhook_events.send_test(ctx, new_account(ctx).id, CALLBACK)  # another account's own cap
    deliveries.run(ctx, sent[0])  # one arrives: room for one more
    webhook_events.send_test(ctx, account.id, CALLBACK)
