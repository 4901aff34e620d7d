"""Accounts and keys (``core.accounts``): a key is shown once and works until revoked; a
webhook secret rotates with an overlap."""

from __future__ import annotations

from datetime import timedelta

import pytest

from wavforge.core import accounts
from wavforge.core.context import Context
from wavforge.errors import InvalidRequest, NotFound, Unauthorized

from .fakes import Clock


def test_a_key_authenticates_until_it_is_revoked(ctx: Context, clock: Clock) -> None:
    issued = accounts.create_account(ctx.db, "someone", credits=3, profile="kie")
    principal = accounts.authenticate(ctx.db, issued.key)
    assert principal.account_id == issued.account_id and principal.key_id == issued.key_id
    assert principal.profile == "kie" and not principal.is_admin
    assert accounts.use_is_unrecorded(principal)
    accounts.record_use(ctx.db, principal)
    again = accounts.authenticate(ctx.db, issued.key)
    assert again.key_last_used_at == clock.now() and not accounts.use_is_unrecorded(again)
    clock.advance(accounts.LAST_USED_RESOLUTION.total_seconds() + 1)
    assert accounts.use_is_unrecorded(again)  # noted again about once a minute

    second = accounts.create_key(ctx.db, issued.account_id, "laptop", profile="vidgo")
    assert accounts.authenticate(ctx.db, second.key).profile == "vidgo"
    accounts.revoke_key(ctx.db, issued.key_id, account_id=issued.account_id)
    with pytest.raises(Unauthorized):
        accounts.authenticate(ctx.db, issued.key)
    with pytest.raises(NotFound):
        accounts.revoke_key(ctx.db, issued.key_id)
    for wrong in ("not-a-key", accounts.KEY_PREFIX + "x" * 43, accounts.KEY_PREFIX * 100):
        with pytest.raises(Unauthorized):
            accounts.authenticate(ctx.db, wrong)


def test_a_reset_key_replaces_the_old_one_in_one_step(ctx: Context, clock: Clock) -> None:
    issued = accounts.create_account(ctx.db, "someone")
    other = accounts.create_account(ctx.db, "other")
    clock.advance(1)
    with pytest.raises(NotFound):  # one account cannot touch another's keys
        accounts.reset_key(ctx.db, issued.key_id, account_id=other.account_id)
    fresh = accounts.reset_key(ctx.db, issued.key_id, account_id=issued.account_id)
    assert fresh.key != issued.key and fresh.account_id == issued.account_id
    assert accounts.authenticate(ctx.db, fresh.key).key_id == fresh.key_id
    with pytest.raises(Unauthorized):
        accounts.authenticate(ctx.db, issued.key)
    keys = accounts.list_keys(ctx.db, issued.account_id)
    assert [(k.key_id, k.revoked_at is None) for k in keys] == [
        (issued.key_id, False),
        (fresh.key_id, True),
    ]
    assert accounts.get_account(ctx.db, issued.account_id).active_keys == 1
    assert len(accounts.list_accounts(ctx.db)) == 2


def test_accounts_refuse_what_they_cannot_hold(ctx: Context) -> None:
    with pytest.raises(InvalidRequest):
        accounts.create_account(ctx.db, "negative", credits=-1)
    with pytest.raises(InvalidRequest):
        accounts.create_account(ctx.db, "unknown profile", profile="nobody")
    with pytest.raises(NotFound):
        accounts.get_account(ctx.db, "acct_missing")
    with pytest.raises(NotFound):
        accounts.create_key(ctx.db, "acct_missing", "key")
    issued = accounts.create_account(ctx.db, "someone")
    accounts.set_profile(ctx.db, issued.account_id, "poyo")
    assert accounts.authenticate(ctx.db, issued.key).profile == "poyo"
    accounts.set_profile(ctx.db, issued.account_id, None)
    assert accounts.authenticate(ctx.db, issued.key).profile is None


def test_a_rotated_webhook_secret_keeps_the_old_one_for_the_overlap(
    ctx: Context, clock: Clock
) -> None:
    issued = accounts.create_account(ctx.db, "someone")
    rotated = accounts.rotate_webhook_secret(ctx.db, issued.account_id)
    assert rotated.webhook_secret != issued.webhook_secret
    assert rotated.previous_valid_until == clock.now() + accounts.SECRET_OVERLAP
    info = accounts.get_account(ctx.db, issued.account_id)
    assert info.webhook_secret == rotated.webhook_secret
    assert info.previous_secret_until == rotated.previous_valid_until
    with pytest.raises(NotFound):
        accounts.rotate_webhook_secret(ctx.db, "acct_missing", timedelta(hours=1))
