"""Bodies and renderings of the account and admin endpoints (wavforge extensions).

They live under ``/api/v1`` and speak the Suno dialect's envelope and camelCase, so a client
of the rest of that API needs nothing new to use them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from wavforge.core.accounts import IssuedKey, KeyInfo
from wavforge.core.ledger import MAX_GRANT, Entry
from wavforge.dialects.suno import time


class NewAccount(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    credits: int = Field(default=0, ge=0, le=MAX_GRANT)
    admin: bool = False


class Grant(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: int = Field(ge=-MAX_GRANT, le=MAX_GRANT)
    note: str = Field(default="", max_length=200)


class MaintenanceSwitch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool


def issued(key: IssuedKey) -> dict[str, Any]:
    """A new key: the only time the key itself is ever shown."""
    return {
        "key": key.key,
        "keyId": key.key_id,
        "accountId": key.account_id,
        "webhookSecret": key.webhook_secret,
    }


def key_info(row: KeyInfo) -> dict[str, Any]:
    return {
        "keyId": row.key_id,
        "prefix": row.prefix,
        "name": row.name,
        "accountId": row.account_id,
        "accountName": row.account_name,
        "credits": row.credits,
        "admin": row.is_admin,
        "createTime": time(row.created_at),
        "lastUsedTime": time(row.last_used_at),
        "revoked": row.revoked_at is not None,
    }


def ledger(account_id: str, balance: int, entries: list[Entry]) -> dict[str, Any]:
    return {
        "accountId": account_id,
        "balance": balance,
        "entries": [
            {
                "time": time(entry.created_at),
                "amount": entry.amount,
                "reason": entry.reason,
                "taskId": entry.wav_task_id,
                "note": entry.note,
            }
            for entry in entries
        ],
    }
