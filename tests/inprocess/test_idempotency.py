"""``Idempotency-Key`` (``core.idempotency``): the first request with a key runs and stores its
answer; the same request again gets that answer, a different one is refused."""

from __future__ import annotations

import pytest

from wavforge.core import idempotency, retention
from wavforge.core.context import Context
from wavforge.core.idempotency import StoredAnswer
from wavforge.core.telemetry import PurgeKind
from wavforge.errors import Conflict, InvalidRequest, TooLarge

from .fakes import Clock, EventLog
from .support import Account, new_account

KEY = "order-7f3a"
BODY = {"code": 200, "msg": "success", "data": {"taskId": "t1"}}


def test_the_same_request_again_gets_the_first_answer(ctx: Context, account: Account) -> None:
    assert idempotency.begin(ctx.db, account.id, KEY, "fingerprint-1") is None  # run it
    idempotency.finish(ctx.db, account.id, KEY, 200, BODY)
    replay = idempotency.begin(ctx.db, account.id, KEY, "fingerprint-1")
    assert replay == StoredAnswer(200, BODY)
    assert idempotency.begin(ctx.db, account.id, KEY, "fingerprint-1") == replay  # every time


def test_a_different_request_with_the_key_is_refused(ctx: Context, account: Account) -> None:
    assert idempotency.begin(ctx.db, account.id, KEY, "fingerprint-1") is None
    idempotency.finish(ctx.db, account.id, KEY, 200, BODY)
    with pytest.raises(InvalidRequest, match="different request"):
        idempotency.begin(ctx.db, account.id, KEY, "fingerprint-2")


def test_a_request_still_running_makes_the_next_one_wait(ctx: Context, account: Account) -> None:
    assert idempotency.begin(ctx.db, account.id, KEY, "fingerprint-1") is None
    with pytest.raises(Conflict, match="in progress"):  # the same request or another
        idempotency.begin(ctx.db, account.id, KEY, "fingerprint-1")
    with pytest.raises(Conflict):
        idempotency.begin(ctx.db, account.id, KEY, "fingerprint-2")


def test_an_abandoned_key_lets_the_retry_run(ctx: Context, account: Account) -> None:
    """The first request ended in a server error: its claim is forgotten, not replayed."""
    assert idempotency.begin(ctx.db, account.id, KEY, "fingerprint-1") is None
    idempotency.abandon(ctx.db, account.id, KEY)
    assert idempotency.begin(ctx.db, account.id, KEY, "fingerprint-2") is None
    idempotency.finish(ctx.db, account.id, KEY, 409, {"code": 409})
    assert idempotency.begin(ctx.db, account.id, KEY, "fingerprint-2") == StoredAnswer(
        409, {"code": 409}
    )


def test_keys_belong_to_one_account(ctx: Context, account: Account) -> None:
    other = new_account(ctx, name="other")
    assert idempotency.begin(ctx.db, account.id, KEY, "fingerprint-1") is None
    idempotency.finish(ctx.db, account.id, KEY, 200, BODY)
    assert idempotency.begin(ctx.db, other.id, KEY, "fingerprint-9") is None


@pytest.mark.parametrize(
    ("key", "error"),
    [
        ("k" * 256, TooLarge),
        ("", InvalidRequest),
        ("two words", InvalidRequest),
        ("é", InvalidRequest),
    ],
)
def test_a_key_is_1_to_255_visible_ascii_characters(
    ctx: Context, account: Account, key: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        idempotency.begin(ctx.db, account.id, key, "fingerprint-1")
    assert idempotency.begin(ctx.db, account.id, "k" * 255, "fingerprint-1") is None


def test_keys_are_kept_a_day_then_purged(
    ctx: Context, account: Account, clock: Clock, events: EventLog
) -> None:
    assert idempotency.begin(ctx.db, account.id, KEY, "fingerprint-1") is None
    idempotency.finish(ctx.db, account.id, KEY, 200, BODY)
    clock.advance(idempotency.KEEP.total_seconds())
    assert retention.purge(ctx).idempotency_keys_deleted == 0  # a day old: still kept
    clock.advance(1)
    assert retention.purge(ctx).idempotency_keys_deleted == 1
    assert ("purged", (PurgeKind.IDEMPOTENCY_KEY, 1)) in events.events
    assert idempotency.begin(ctx.db, account.id, KEY, "fingerprint-2") is None  # a new claim
