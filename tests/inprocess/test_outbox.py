"""The callback outbox (``core.deliveries``): a delivery row written with the state change it
announces, sent by claim, signed, and retried on its dialect's schedule; no network involved
(the POST is :class:`inprocess.fakes.ScriptedReceiver`)."""

from __future__ import annotations

import json

import pytest
from standardwebhooks.webhooks import Webhook

from wavforge.audio import UnsupportedAudio
from wavforge.config import Settings
from wavforge.core import conversion, deliveries, delivery_log, leases, recovery, wav_tasks
from wavforge.core.context import Context
from wavforge.core.records import TrackRecord
from wavforge.core.states import DeliveryStatus, WavStatus
from wavforge.core.telemetry import CallbackOutcome
from wavforge.dialects import DIALECTS
from wavforge.outbound.post import Attempt

from .fakes import (
    Clock,
    EventLog,
    FakeConverter,
    RecordingDispatcher,
    ScriptedReceiver,
    refused,
    unreachable,
)
from .support import (
    CALLBACK,
    Account,
    attempt_count,
    delivery_rows,
    submit,
    task_row,
    work,
)


def finished_with_callback(
    ctx: Context,
    account: Account,
    track: TrackRecord,
    dispatcher: RecordingDispatcher,
    dialect: str = "suno",
) -> tuple[str, str]:
    """A converted task with a callback URL; returns (task id, delivery id)."""
    task_id = submit(ctx, account, track, callback_url=CALLBACK, dialect=dialect).id
    work(ctx, dispatcher)
    (delivery,) = delivery_rows(ctx, task_id)
    dispatcher.deliveries.clear()
    return task_id, delivery.id


def test_finishing_writes_the_callback_into_the_outbox_and_sends_it(
    ctx: Context, account: Account, track: TrackRecord, dispatcher: RecordingDispatcher
) -> None:
    task_id = submit(ctx, account, track, callback_url=CALLBACK).id
    work(ctx, dispatcher)

    (delivery,) = delivery_rows(ctx, task_id)
    assert delivery.status == DeliveryStatus.PENDING and delivery.attempts == 0
    assert delivery.url == CALLBACK and delivery.account_id == account.id
    assert delivery.dialect == "suno" and delivery.next_attempt_at is None
    record = wav_tasks.get_wav(ctx, account.id, task_id)
    assert delivery.payload == DIALECTS.named("suno").callback_body(record)
    assert delivery.payload["code"] == 200
    assert delivery.payload["data"]["audioWavUrl"] == record.wav_url is not None
    assert dispatcher.deliveries == [(delivery.id, None)]


def test_a_failed_task_announces_its_failure_in_its_dialect(
    ctx: Context,
    account: Account,
    track: TrackRecord,
    converter: FakeConverter,
    dispatcher: RecordingDispatcher,
) -> None:
    task_id = submit(ctx, account, track, callback_url=CALLBACK, dialect="unified").id
    converter.fail_next(UnsupportedAudio("no audio"))
    work(ctx, dispatcher)
    (delivery,) = delivery_rows(ctx, task_id)
    assert delivery.payload["data"]["status"] == "failed"
    assert delivery.payload["data"]["files"] == []
    assert dispatcher.deliveries == [(delivery.id, None)]


def test_no_callback_url_no_delivery(
    ctx: Context, account: Account, track: TrackRecord, dispatcher: RecordingDispatcher
) -> None:
    task_id = submit(ctx, account, track).id
    work(ctx, dispatcher)
    assert delivery_rows(ctx, task_id) == [] and dispatcher.deliveries == []


def test_a_lost_delivery_message_is_sent_again_by_the_sweep(
    ctx: Context,
    account: Account,
    track: TrackRecord,
    dispatcher: RecordingDispatcher,
    clock: Clock,
) -> None:
    task_id = submit(ctx, account, track, callback_url=CALLBACK).id
    dispatcher.take_converts()
    dispatcher.down = True  # the queue fails between the commit and the message
    conversion.run(ctx, task_id)
    assert task_row(ctx, task_id).status == WavStatus.SUCCESS  # committed all the same
    (delivery,) = delivery_rows(ctx, task_id)
    dispatcher.down = False

    assert recovery.sweep(ctx).deliveries == 0
    clock.advance(ctx.settings.lease_seconds + 1)
    assert recovery.sweep(ctx).deliveries == 1
    assert dispatcher.deliveries == [(delivery.id, None)]


def test_an_attempt_is_signed_recorded_and_ends_the_delivery(
    ctx: Context,
    account: Account,
    track: TrackRecord,
    dispatcher: RecordingDispatcher,
    receiver: ScriptedReceiver,
    events: EventLog,
) -> None:
    task_id, delivery_id = finished_with_callback(ctx, account, track, dispatcher)
    deliveries.run(ctx, delivery_id)

    (post,) = receiver.posts
    assert post.url == CALLBACK and post.timeout == ctx.settings.callback_timeout
    assert post.allow_private is ctx.settings.callback_allow_private
    assert post.headers["webhook-id"] == delivery_id
    payload = Webhook(account.webhook_secret).verify(post.body, post.headers)
    assert payload == json.loads(post.body) == delivery_rows(ctx, task_id)[0].payload
    (delivery,) = delivery_rows(ctx, task_id)
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 1
    assert delivery.lease_owner is None and delivery.delivered_at is not None
    assert events.of("callback_attempted") == [CallbackOutcome.DELIVERED]
    assert dispatcher.deliveries == []  # nothing more to send

    deliveries.run(ctx, delivery_id)  # a duplicate message: nothing to claim
    assert len(receiver.posts) == 1
    (log,) = delivery_log.for_task(ctx, account.id, task_id)
    assert [(a.status_code, a.error) for a in log.attempts] == [(200, None)]


@pytest.mark.parametrize("dialect", ["suno", "unified"])
def test_each_dialect_retries_on_its_own_schedule_then_gives_up(
    ctx: Context,
    account: Account,
    track: TrackRecord,
    dispatcher: RecordingDispatcher,
    receiver: ScriptedReceiver,
    clock: Clock,
    events: EventLog,
    dialect: str,
) -> None:
    schedule = DIALECTS.named(dialect).retry_schedule(ctx.settings)
    task_id, delivery_id = finished_with_callback(ctx, account, track, dispatcher, dialect)
    answers = [refused(500), refused(503), unreachable(), refused(502)][: len(schedule) + 1]
    receiver.answer(*answers)

    for made, delay in enumerate(schedule, start=1):
        deliveries.run(ctx, delivery_id)
        assert dispatcher.deliveries[-1] == (delivery_id, delay)
        (delivery,) = delivery_rows(ctx, task_id)
        assert delivery.status == DeliveryStatus.PENDING and delivery.attempts == made
        assert delivery.next_attempt_at == delivery.dispatched_at
        assert delivery.next_attempt_at is not None
        assert (delivery.next_attempt_at - clock.now()).total_seconds() == delay

        clock.advance(delay - 0.5)
        deliveries.run(ctx, delivery_id)  # a message early (Huey's scheduler is coarse)
        assert len(receiver.posts) == made  # not due: not sent
        assert recovery.sweep(ctx).deliveries == 0  # a scheduled retry is not a lost one
        clock.advance(0.5)

    deliveries.run(ctx, delivery_id)  # the last attempt of the schedule fails too
    (delivery,) = delivery_rows(ctx, task_id)
    assert delivery.status == DeliveryStatus.FAILED and delivery.next_attempt_at is None
    assert len(receiver.posts) == len(schedule) + 1 == attempt_count(ctx, delivery_id)
    assert len(dispatcher.deliveries) == len(schedule)  # no retry after the last
    assert {post.headers["webhook-id"] for post in receiver.posts} == {delivery_id}
    record = wav_tasks.get_wav(ctx, account.id, task_id)
    assert record.status == WavStatus.CALLBACK_EXCEPTION and record.wav_url is not None
    expected = [CallbackOutcome.RETRYING] * len(schedule) + [CallbackOutcome.GAVE_UP]
    assert events.of("callback_attempted") == expected
    (log,) = delivery_log.for_task(ctx, account.id, task_id)
    assert log.status == DeliveryStatus.FAILED and len(log.attempts) == len(schedule) + 1
    assert [a.status_code for a in log.attempts] == [a.status_code for a in answers]
    assert [a.error for a in log.attempts] == [a.error for a in answers]


def test_the_schedules_come_from_the_settings() -> None:
    defaults = Settings(data_dir="unused")
    assert DIALECTS.named("suno").retry_schedule(defaults) == (60.0, 300.0, 900.0)
    assert DIALECTS.named("unified").retry_schedule(defaults) == (1.0, 2.0, 4.0)
    assert DIALECTS.named(None) is DIALECTS.named("suno")  # rows from before dialects
    chosen = Settings(data_dir="unused", callback_retry_suno="5,7", callback_retry_unified="")
    assert DIALECTS.named("suno").retry_schedule(chosen) == (5.0, 7.0)
    assert DIALECTS.named("unified").retry_schedule(chosen) == ()


@pytest.mark.settings(callback_retry_unified=())
def test_an_empty_schedule_means_one_attempt(
    ctx: Context,
    account: Account,
    track: TrackRecord,
    dispatcher: RecordingDispatcher,
    receiver: ScriptedReceiver,
) -> None:
    task_id, delivery_id = finished_with_callback(ctx, account, track, dispatcher, "unified")
    receiver.answer(refused(500))
    deliveries.run(ctx, delivery_id)
    assert delivery_rows(ctx, task_id)[0].status == DeliveryStatus.FAILED
    assert dispatcher.deliveries == []


@pytest.mark.parametrize(("retry_after", "delay"), [(30.0, 30.0), (0.2, 1.0)])
def test_retry_after_stretches_the_wait_but_never_shortens_it(
    ctx: Context,
    account: Account,
    track: TrackRecord,
    dispatcher: RecordingDispatcher,
    receiver: ScriptedReceiver,
    clock: Clock,
    retry_after: float,
    delay: float,
) -> None:
    task_id, delivery_id = finished_with_callback(ctx, account, track, dispatcher, "unified")
    receiver.answer(refused(429, retry_after=retry_after))
    deliveries.run(ctx, delivery_id)
    assert dispatcher.deliveries == [(delivery_id, delay)]
    (delivery,) = delivery_rows(ctx, task_id)
    assert delivery.next_attempt_at is not None
    assert (delivery.next_attempt_at - clock.now()).total_seconds() == delay


def test_a_sender_that_died_mid_attempt_is_replaced_once_its_lease_runs_out(
    ctx: Context,
    account: Account,
    track: TrackRecord,
    dispatcher: RecordingDispatcher,
    receiver: ScriptedReceiver,
    clock: Clock,
) -> None:
    task_id, delivery_id = finished_with_callback(ctx, account, track, dispatcher)
    lease = ctx.settings.callback_timeout * 2
    with ctx.db.write() as session:
        assert leases.claim_delivery(session, delivery_id, "dead-sender", lease)
    deliveries.run(ctx, delivery_id)  # leased: another sender keeps off
    assert receiver.posts == [] and recovery.sweep(ctx).deliveries == 0

    clock.advance(lease + 1)
    assert recovery.sweep(ctx).deliveries == 1
    assert dispatcher.deliveries == [(delivery_id, None)]
    deliveries.run(ctx, delivery_id)
    assert len(receiver.posts) == 1
    assert delivery_rows(ctx, task_id)[0].status == DeliveryStatus.DELIVERED


def test_an_attempt_that_outlived_its_lease_leaves_the_delivery_to_its_new_sender(
    ctx: Context,
    account: Account,
    track: TrackRecord,
    dispatcher: RecordingDispatcher,
    receiver: ScriptedReceiver,
    clock: Clock,
    events: EventLog,
) -> None:
    task_id, delivery_id = finished_with_callback(ctx, account, track, dispatcher)
    lease = ctx.settings.callback_timeout * 2

    def slow_failure() -> Attempt:
        clock.advance(lease + 1)
        with ctx.db.write() as session:
            assert leases.claim_delivery(session, delivery_id, "new-sender", lease)
        return refused(500)

    receiver.answer(slow_failure)
    deliveries.run(ctx, delivery_id)
    (delivery,) = delivery_rows(ctx, task_id)
    assert delivery.lease_owner == "new-sender" and delivery.attempts == 0
    assert attempt_count(ctx, delivery_id) == 1  # the attempt itself is on record
    assert dispatcher.deliveries == []  # and schedules nothing: the new sender decides
    assert events.of("callback_attempted") == [CallbackOutcome.LEASE_LOST]
