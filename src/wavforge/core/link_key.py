"""The key download links are signed with, shared by every process of a deployment.

An operator may set ``WAVFORGE_SECRET_KEY``; otherwise the first process to start creates a
key in the database and every later one, on any machine, reads the same row. A key left in
the data dir by an older embedded install is adopted, so links already handed out still work.
"""

from __future__ import annotations

import contextlib
import secrets

from sqlalchemy.exc import IntegrityError

from wavforge.config import Settings
from wavforge.core import clock
from wavforge.db.database import Database
from wavforge.db.models import ServiceSecret

NAME = "link-key"
LEGACY_FILE = "server-secret"


def link_key(settings: Settings, db: Database) -> bytes:
    if settings.secret_key:
        return settings.secret_key.encode()
    stored = _stored(db)
    if stored is None:
        # Racing first starts: one insert wins the primary key, everyone reads the winner.
        with contextlib.suppress(IntegrityError), db.write() as session:
            session.add(ServiceSecret(name=NAME, value=_first(settings), created_at=clock.now()))
        stored = _stored(db)
    assert stored is not None
    return stored.encode()


def _stored(db: Database) -> str | None:
    with db.read() as session:
        row = session.get(ServiceSecret, NAME)
        return row.value if row else None


def _first(settings: Settings) -> str:
    legacy = settings.data_dir / LEGACY_FILE
    if legacy.is_file():
        return legacy.read_text().strip()
    return secrets.token_urlsafe(48)
