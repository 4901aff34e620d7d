"""Accounts and their API keys. A key is shown once; only its SHA-256 and a prefix are kept.

Keys carry 256 bits of randomness, so a fast unsalted hash is the right tool: there is nothing
to brute-force, and authentication stays one indexed lookup.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from wavforge import profiles
from wavforge.core import clock, ids, ledger
from wavforge.db.database import Database
from wavforge.db.models import Account, ApiKey
from wavforge.errors import Conflict, InvalidRequest, NotFound, Unauthorized

KEY_PREFIX = "wf_"
VISIBLE_CHARS = 10
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class Principal:
    account_id: str
    key_id: str
    is_admin: bool
    key_last_used_at: datetime | None = None
    profile: str | None = None  # the vendor profile its answers use; None: the default


@dataclass(frozen=True)
class IssuedKey:
    key: str
    key_id: str
    account_id: str
    webhook_secret: str
    profile: str | None = None  # the vendor profile the key answers in; None: the server's


@dataclass(frozen=True)
class KeyInfo:
    key_id: str
    account_id: str
    account_name: str
    name: str
    prefix: str
    is_admin: bool
    credits: int
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    profile: str | None = None  # the key's own, else its account's


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def _new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def create_account(
    db: Database,
    name: str,
    *,
    credits: int = 0,
    admin: bool = False,
    profile: str | None = None,
) -> IssuedKey:
    """A new account with its first key; ``profile`` is the vendor profile of its keys."""
    account = Account(
        id=ids.prefixed("acct"),
        name=name,
        credits=credits,
        is_admin=admin,
        webhook_secret=_new_webhook_secret(),
        profile=checked_profile(profile),
        created_at=clock.now(),
    )
    if credits < 0:
        raise InvalidRequest("credits cannot be negative")
    with db.write() as session:
        session.add(account)
        session.flush()
        ledger.opening_grant(session, account.id, credits)
        return _issue(session, account, name)


def checked_profile(name: str | None) -> str | None:
    """``name`` if it is a vendor profile (or None: the server's default), else a 400."""
    if name is None:
        return None
    try:
        return profiles.check(name)
    except ValueError as error:
        raise InvalidRequest(str(error)) from None


def _issue(session: Session, account: Account, name: str, profile: str | None = None) -> IssuedKey:
    key = _new_key()
    row = ApiKey(
        id=ids.prefixed("key"),
        account_id=account.id,
        name=name,
        prefix=key[:VISIBLE_CHARS],
        key_hash=hash_key(key),
        profile=checked_profile(profile),
        created_at=clock.now(),
    )
    session.add(row)
    effective = row.profile or account.profile
    return IssuedKey(key, row.id, account.id, account.webhook_secret, effective)


# Built once: building a statement costs more than running it on SQLite.
_KEY_BY_HASH = (
    select(
        ApiKey.id,
        ApiKey.last_used_at,
        Account.id,
        Account.is_admin,
        func.coalesce(ApiKey.profile, Account.profile),
    )
    .join(Account, Account.id == ApiKey.account_id)
    .where(ApiKey.key_hash == bindparam("key_hash"), ApiKey.revoked_at.is_(None))
)


def authenticate(db: Database, key: str) -> Principal:
    """The principal behind a presented key, or :class:`Unauthorized`. Only reads: see
    :func:`record_use` for the write that notes the key's use."""
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        raise Unauthorized()
    with db.read_rows() as rows:
        found = rows.first(_KEY_BY_HASH, {"key_hash": hash_key(key)})
    if found is None:
        raise Unauthorized()
    key_id, last_used, account_id, is_admin, profile = found
    return Principal(account_id, key_id, is_admin, key_last_used_at=last_used, profile=profile)


def use_is_unrecorded(principal: Principal) -> bool:
    """Whether the key's last use is older than the resolution it is recorded at."""
    last_used = principal.key_last_used_at
    return last_used is None or clock.now() - last_used > LAST_USED_RESOLUTION


_NOTE_USE = (
    update(ApiKey).where(ApiKey.id == bindparam("key_id")).values(last_used_at=bindparam("at"))
)


def record_use(db: Database, principal: Principal) -> None:
    """Note the key's use; callers ask :func:`use_is_unrecorded` first, so that
    authentication is a write about once a minute per key, not once per request. Still a
    burst of keys new to a process (a restart, many clients at once) makes one each, so it
    is a plain-row statement like a submission's."""
    with db.write_rows() as rows:
        rows.run(_NOTE_USE, {"key_id": principal.key_id, "at": clock.now()})


@dataclass(frozen=True)
class AccountInfo:
    id: str
    name: str
    credits: int
    is_admin: bool
    created_at: datetime
    webhook_secret: str
    previous_secret_until: datetime | None
    active_keys: int
    profile: str | None = None


def list_keys(db: Database, account_id: str | None = None) -> list[KeyInfo]:
    """Every key, or with ``account_id`` only that account's (what its owner may manage)."""
    query = select(ApiKey, Account).join(Account).order_by(ApiKey.created_at)
    if account_id is not None:
        query = query.where(ApiKey.account_id == account_id)
    with db.read() as session:
        rows = session.execute(query).all()
    return [_info(key, account) for key, account in rows]


def get_account(db: Database, account_id: str) -> AccountInfo:
    found = list_accounts(db, account_id)
    if not found:
        raise NotFound(f"no account {account_id!r}")
    return found[0]


def list_accounts(db: Database, account_id: str | None = None) -> list[AccountInfo]:
    """Accounts oldest first, each with its count of keys that still work."""
    active = (
        select(ApiKey.account_id, func.count().label("keys"))
        .where(ApiKey.revoked_at.is_(None))
        .group_by(ApiKey.account_id)
        .subquery()
    )
    query = (
        select(Account, func.coalesce(active.c["keys"], 0))
        .outerjoin(active, active.c.account_id == Account.id)
        .order_by(Account.created_at)
    )
    if account_id is not None:
        query = query.where(Account.id == account_id)
    with db.read() as session:
        rows = session.execute(query).all()
    return [
        AccountInfo(
            id=account.id,
            name=account.name,
            credits=account.credits,
            is_admin=account.is_admin,
            created_at=account.created_at,
            webhook_secret=account.webhook_secret,
            previous_secret_until=account.previous_secret_until,
            active_keys=keys,
            profile=account.profile,
        )
        for account, keys in rows
    ]


def create_key(db: Database, account_id: str, name: str, profile: str | None = None) -> IssuedKey:
    """Another key for an existing account, e.g. one per machine so each can be revoked alone;
    with ``profile``, the key answers in that vendor profile whatever its account's is."""
    with db.write() as session:
        account = session.get(Account, account_id)
        if account is None:
            raise NotFound(f"no account {account_id!r}")
        return _issue(session, account, name, profile)


def set_profile(db: Database, account_id: str, profile: str | None) -> None:
    """Choose the vendor profile of an account's keys (those without one of their own)."""
    with db.write() as session:
        account = session.get(Account, account_id)
        if account is None:
            raise NotFound(f"no account {account_id!r}")
        account.profile = checked_profile(profile)


LAST_ADMIN = (
    "this is the last admin account with a working key: make another account an admin "
    "first, or nobody could administer the service from the API or the console"
)


def set_admin(db: Database, account_id: str, admin: bool) -> None:
    """Grant or remove an account's admin rights; they hold from its keys' next request.

    Removing them is refused (409) when no other admin account would keep a working key:
    the operator would be locked out of the API and the console, with only the command line
    on the server's machine left to recover.
    """
    with db.write() as session:
        account = session.get(Account, account_id)
        if account is None:
            raise NotFound(f"no account {account_id!r}")
        if account.is_admin and not admin:
            _keep_another_admin(session, account_id)
        account.is_admin = admin


def _keep_another_admin(session: Session, leaving: str) -> None:
    """Refuse unless an admin account besides ``leaving`` has a key that is not revoked.

    The admin rows are locked first, in one order (PostgreSQL; SQLite has one writer at a
    time), so two operators removing each other's rights at once cannot both succeed.
    """
    admins = session.scalars(
        select(Account.id).where(Account.is_admin.is_(True)).order_by(Account.id).with_for_update()
    ).all()
    others = [found for found in admins if found != leaving]
    working = others and session.scalar(
        select(func.count())
        .select_from(ApiKey)
        .where(ApiKey.account_id.in_(others), ApiKey.revoked_at.is_(None))
    )
    if not working:
        raise Conflict(LAST_ADMIN)


def _info(key: ApiKey, account: Account) -> KeyInfo:
    return KeyInfo(
        key_id=key.id,
        account_id=account.id,
        account_name=account.name,
        name=key.name,
        prefix=key.prefix,
        is_admin=account.is_admin,
        credits=account.credits,
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        revoked_at=key.revoked_at,
        profile=key.profile or account.profile,
    )


def revoke_key(db: Database, key_id: str, account_id: str | None = None) -> None:
    """Revoke a key; with ``account_id``, only if it is that account's (else 404, as if the
    key did not exist: one account learns nothing about another's keys)."""
    query = update(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
    if account_id is not None:
        query = query.where(ApiKey.account_id == account_id)
    with db.write() as session:
        result = session.execute(query.values(revoked_at=clock.now()))
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise NotFound(f"no active key {key_id!r}")


def reset_key(db: Database, key_id: str, account_id: str | None = None) -> IssuedKey:
    """Revoke a key and issue its replacement, in one transaction (scoped as revoke_key)."""
    with db.write() as session:
        old = session.get(ApiKey, key_id)
        if (
            old is None
            or old.revoked_at is not None
            or (account_id is not None and old.account_id != account_id)
        ):
            raise NotFound(f"no active key {key_id!r}")
        old.revoked_at = clock.now()
        account = session.get_one(Account, old.account_id)
        return _issue(session, account, old.name, old.profile)


def balance(db: Database, account_id: str) -> int:
    """The caller's own balance (its account exists; ``ledger.statement`` checks others)."""
    with db.read() as session:
        credits = session.scalar(select(Account.credits).where(Account.id == account_id))
    return credits or 0


SECRET_OVERLAP = timedelta(hours=24)


@dataclass(frozen=True)
class RotatedSecret:
    webhook_secret: str
    previous_valid_until: datetime


def rotate_webhook_secret(
    db: Database, account_id: str, overlap: timedelta = SECRET_OVERLAP
) -> RotatedSecret:
    """A new signing secret; the old one keeps signing beside it for ``overlap``.

    Receivers verify against any of the space-separated signatures, so they can switch to the
    new secret at their own pace within the overlap without rejecting a delivery.
    """
    now = clock.now()
    with db.write() as session:
        account = session.get(Account, account_id)
        if account is None:
            raise NotFound(f"no account {account_id!r}")
        account.previous_webhook_secret = account.webhook_secret
        account.previous_secret_until = now + overlap
        account.webhook_secret = _new_webhook_secret()
        return RotatedSecret(account.webhook_secret, now + overlap)
