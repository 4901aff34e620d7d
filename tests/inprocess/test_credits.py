"""Credits (``core.ledger``) and what the core reports of them (``core.telemetry``): a charge
or refund is counted once its transaction commits, and the ledger always sums to the balance."""

from __future__ import annotations

import pytest

from wavforge.audio import UnsupportedAudio
from wavforge.core import ledger, maintenance
from wavforge.core.context import Context
from wavforge.core.records import TrackRecord
from wavforge.errors import Conflict, InvalidRequest, Maintenance, NotFound

from .fakes import Clock, EventLog, FakeConverter, RecordingDispatcher
from .support import Account, balance, ledger_of, new_account, new_track, submit, work


def test_charges_and_refunds_are_reported_as_the_ledger_records_them(
    ctx: Context,
    account: Account,
    converter: FakeConverter,
    dispatcher: RecordingDispatcher,
    events: EventLog,
) -> None:
    for _ in range(3):
        submit(ctx, account, new_track(ctx, account))
    converter.fail_next(UnsupportedAudio("no audio"))
    converter.fail_next(UnsupportedAudio("no audio"))
    work(ctx, dispatcher)  # two fail and are refunded, one succeeds
    held = new_track(ctx, account)
    submit(ctx, account, held)
    with pytest.raises(Conflict):  # a refused submission is neither charged nor counted
        submit(ctx, account, held)

    charged = [amount for reason, amount, _ in ledger_of(ctx, account) if reason == "charge"]
    refunded = [amount for reason, amount, _ in ledger_of(ctx, account) if reason == "refund"]
    assert events.of("credits_charged") == [-amount for amount in charged] == [1, 1, 1, 1]
    assert events.of("credits_refunded") == refunded == [1, 1]
    assert balance(ctx, account) == 10 - 4 + 2


@pytest.mark.settings(wav_cost=0)
def test_a_free_conversion_moves_no_credits_and_reports_none(
    ctx: Context,
    account: Account,
    track: TrackRecord,
    converter: FakeConverter,
    dispatcher: RecordingDispatcher,
    events: EventLog,
) -> None:
    broke = new_account(ctx, credits=0)
    submit(ctx, broke, new_track(ctx, broke))  # free: accepted without credits
    converter.fail_next(UnsupportedAudio("no audio"))
    work(ctx, dispatcher)
    assert ledger_of(ctx, broke) == [] and balance(ctx, broke) == 0
    assert events.of("credits_refunded") == []


def test_grants_keep_the_ledger_and_the_balance_together(ctx: Context, account: Account) -> None:
    assert ledger.grant(ctx.db, account.id, 5, note="top-up") == 15
    assert ledger.grant(ctx.db, account.id, -15) == 0
    with pytest.raises(InvalidRequest, match="below zero"):
        ledger.grant(ctx.db, account.id, -1)
    with pytest.raises(InvalidRequest):
        ledger.grant(ctx.db, account.id, 0)
    with pytest.raises(NotFound):
        ledger.grant(ctx.db, "acct_missing", 1)
    statement = ledger.statement(ctx.db, account.id)
    assert statement.balance == balance(ctx, account) == 0
    assert [(e.reason, e.amount, e.note) for e in statement.entries] == [
        ("grant", -15, ""),
        ("grant", 5, "top-up"),
        ("grant", 10, "opening balance"),
    ]


def test_maintenance_refuses_submissions_within_a_second_of_the_switch(
    ctx: Context, clock: Clock
) -> None:
    ctx.maintenance.check()  # off
    maintenance.switch(ctx.db, True)
    ctx.maintenance.check()  # the process's cached view: still off for up to a second
    clock.advance(maintenance.CACHE_SECONDS)
    with pytest.raises(Maintenance):
        ctx.maintenance.check()
    maintenance.switch(ctx.db, False)
    clock.advance(maintenance.CACHE_SECONDS)
    ctx.maintenance.check()


def test_the_process_that_switches_maintenance_sees_it_at_once(ctx: Context) -> None:
    """An operator who turns maintenance off and submits through the same process is not
    refused by that process's cached view (other processes catch up within the second)."""
    ctx.maintenance.check()  # off, and now cached
    ctx.maintenance.switch(True)
    with pytest.raises(Maintenance):
        ctx.maintenance.check()
    ctx.maintenance.switch(False)
    ctx.maintenance.check()
    assert maintenance.is_on(ctx.db) is False
