"""An operator's view of one account (``core.account_detail``) and admin rights
(``core.accounts.set_admin``): usage counted exactly, ever and over the recent window, and
no way to take the rights from the last admin that can still sign in."""

from __future__ import annotations

from datetime import timedelta

import pytest

from wavforge.audio import ConversionFailed
from wavforge.core import account_detail, accounts, deletion, ledger
from wavforge.core.context import Context
from wavforge.core.states import WavStatus
from wavforge.errors import Conflict, NotFound

from .fakes import Clock, FakeConverter, RecordingDispatcher
from .support import Account, new_account, new_track, submit, work

SECONDS = FakeConverter.FRAMES / FakeConverter.SAMPLE_RATE  # what each fake WAV holds


def counts(**found: int) -> dict[WavStatus, int]:
    return {status: found.get(status.value, 0) for status in WavStatus}


def test_usage_is_exact_ever_and_over_the_last_30_days(
    ctx: Context,
    account: Account,
    clock: Clock,
    converter: FakeConverter,
    dispatcher: RecordingDispatcher,
) -> None:
    # Long ago: one import, converted once and failed once (refunded); the track deleted.
    old = new_track(ctx, account)
    submit(ctx, account, old)
    work(ctx, dispatcher)
    submit(ctx, account, old, options={"bit_depth": 24})
    converter.fail_next(ConversionFailed("the decoder died"))
    work(ctx, dispatcher)
    deletion.delete_track(ctx, account.id, old.id)
    clock.advance(timedelta(days=31).total_seconds())

    # Lately: another import, converted once, a second conversion waiting; a grant.
    fresh = new_track(ctx, account)
    submit(ctx, account, fresh)
    work(ctx, dispatcher)
    submit(ctx, account, fresh, options={"bit_depth": 24})
    ledger.grant(ctx.db, account.id, 5)
    new_track(ctx, new_account(ctx, name="someone else"))  # not this account's

    found = account_detail.detail(ctx.db, account.id)
    assert found.since == clock.now() - timedelta(days=30)
    assert found.account.credits == 10 - 3 + 5
    assert found.all_time == account_detail.Totals(
        imports=2,
        tracks=2,  # the deleted one too: it was imported
        wav_tasks=counts(SUCCESS=2, GENERATE_WAV_FAILED=1, PENDING=1),
        credits_spent=3,  # four charges, one refund; the grant is not spending
        seconds_converted=pytest.approx(2 * SECONDS),
    )
    assert found.recent == account_detail.Totals(
        imports=1,
        tracks=1,
        wav_tasks=counts(SUCCESS=1, PENDING=1),
        credits_spent=2,
        seconds_converted=pytest.approx(SECONDS),
    )


def test_a_new_account_has_its_key_and_zeros(ctx: Context) -> None:
    issued = accounts.create_account(ctx.db, "fresh", credits=7, profile="kie")
    found = account_detail.detail(ctx.db, issued.account_id)
    assert (found.account.name, found.account.credits, found.account.profile) == ("fresh", 7, "kie")
    assert [key.key_id for key in found.keys] == [issued.key_id]
    zero = account_detail.Totals(0, 0, counts(), 0, 0.0)
    assert found.all_time == zero and found.recent == zero
    with pytest.raises(NotFound):
        account_detail.detail(ctx.db, "acct_nobody")


def test_admin_rights_are_granted_and_removed_but_never_from_the_last_admin(
    ctx: Context,
) -> None:
    first = accounts.create_account(ctx.db, "ops", admin=True)
    other = accounts.create_account(ctx.db, "dev")
    assert not accounts.authenticate(ctx.db, other.key).is_admin

    accounts.set_admin(ctx.db, other.account_id, True)
    assert accounts.authenticate(ctx.db, other.key).is_admin  # at its next request
    accounts.set_admin(ctx.db, first.account_id, False)
    assert not accounts.authenticate(ctx.db, first.key).is_admin

    with pytest.raises(Conflict, match="last admin account with a working key"):
        accounts.set_admin(ctx.db, other.account_id, False)
    assert accounts.get_account(ctx.db, other.account_id).is_admin

    # An admin whose every key is revoked cannot sign in: it does not count.
    locked_out = accounts.create_account(ctx.db, "gone", admin=True)
    accounts.revoke_key(ctx.db, locked_out.key_id)
    with pytest.raises(Conflict):
        accounts.set_admin(ctx.db, other.account_id, False)
    accounts.set_admin(ctx.db, locked_out.account_id, False)  # the others still have one

    # With a second working admin, either may go.
    accounts.set_admin(ctx.db, first.account_id, True)
    accounts.set_admin(ctx.db, other.account_id, False)
    accounts.set_admin(ctx.db, other.account_id, False)  # already not: nothing to refuse
    assert [a.name for a in accounts.list_accounts(ctx.db) if a.is_admin] == ["ops"]
    with pytest.raises(NotFound):
        accounts.set_admin(ctx.db, "acct_nobody", True)
