"""Callback signatures: the Suno-family headers and Standard Webhooks, from one secret.

Receivers written for the vendors check ``X-Webhook-Signature`` =
base64(HMAC-SHA256(secret, "<task_id>.<timestamp>")); receivers using an off-the-shelf
Standard Webhooks library check ``webhook-signature`` over "<id>.<timestamp>.<body>", which
also covers the body. Both use the decoded ``whsec_`` secret as the HMAC key. During a secret
rotation every active secret signs and the signatures are sent space-separated, as Standard
Webhooks specifies, so receivers can switch secrets without losing a delivery.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from standardwebhooks.webhooks import Webhook

__all__ = ["canonical_body", "signature_headers"]

_PREFIX = "whsec_"


def canonical_body(payload: dict[str, Any]) -> bytes:
    """The exact bytes sent and signed; the same payload always gives the same bytes."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def signature_headers(
    *,
    webhook_id: str,
    task_id: str,
    body: bytes,
    secrets: Sequence[str],
    at: datetime,
) -> dict[str, str]:
    """Both header sets for one attempt; ``at`` is the attempt's own time (fresh per try)."""
    moment = at.replace(tzinfo=UTC) if at.tzinfo is None else at
    timestamp = str(int(moment.timestamp()))
    text = body.decode()
    standard = [Webhook(secret).sign(webhook_id, moment, text) for secret in secrets]
    vendor = [_vendor_signature(secret, task_id, timestamp) for secret in secrets]
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": " ".join(standard),
        "X-Webhook-Timestamp": timestamp,
        "X-Webhook-Signature": " ".join(vendor),
    }


def _vendor_signature(secret: str, task_id: str, timestamp: str) -> str:
    key = _decode(secret)
    digest = hmac.new(key, f"{task_id}.{timestamp}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _decode(secret: str) -> bytes:
    """The HMAC key inside a ``whsec_<base64>`` secret, decoded as Standard Webhooks does."""
    return base64.b64decode(secret.removeprefix(_PREFIX) + "==")
