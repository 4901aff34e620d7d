"""Identifiers, shaped like the vendors' so clients' own validation accepts them."""

from __future__ import annotations

import secrets
import uuid


def task_id() -> str:
    """32 hex characters, like a Suno task id."""
    return uuid.uuid4().hex


def audio_id() -> str:
    """A dashed UUID, like a Suno audio id."""
    return str(uuid.uuid4())


def prefixed(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"
