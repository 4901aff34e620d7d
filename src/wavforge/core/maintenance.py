"""Maintenance mode (CONTRACT §2, code 455): new submissions refused, reads still served.

The switch is a row in the database, so ``wavforge maintenance on`` or the admin API flips
every API process at run time. Each process rereads it at most once per ``CACHE_SECONDS``:
a submission then costs no extra query, and a switch takes effect within that time in the
other processes. The process that makes the switch (:meth:`MaintenanceGate.switch`) sees it at
once: an operator who turns maintenance off and submits is not refused by a stale view.
"""

from __future__ import annotations

import threading
import time

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from wavforge.core import clock
from wavforge.db.database import Database
from wavforge.db.models import ServiceFlag
from wavforge.errors import Maintenance

FLAG = "maintenance"
CACHE_SECONDS = 1.0


def is_on(db: Database) -> bool:
    with db.read() as session:
        return bool(session.scalar(select(ServiceFlag.enabled).where(ServiceFlag.name == FLAG)))


def switch(db: Database, enabled: bool) -> None:
    try:
        _set(db, enabled)
    except IntegrityError:  # another process created the row at the same moment: now it exists
        _set(db, enabled)


def _set(db: Database, enabled: bool) -> None:
    with db.write() as session:
        flag = session.get(ServiceFlag, FLAG)
        if flag is None:
            session.add(ServiceFlag(name=FLAG, enabled=enabled, updated_at=clock.now()))
        else:
            flag.enabled, flag.updated_at = enabled, clock.now()


class MaintenanceGate:
    """The per-process view of the switch, cached briefly."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._lock = threading.Lock()
        self._checked_at: float | None = None
        self._on = False

    def check(self) -> None:
        """Raise :class:`Maintenance` while the switch is on."""
        if self._current():
            raise Maintenance()

    def switch(self, enabled: bool) -> None:
        """Flip the switch for every process, and for this one's view now."""
        switch(self._db, enabled)
        with self._lock:
            self._on, self._checked_at = enabled, time.monotonic()

    def _current(self) -> bool:
        with self._lock:
            stale = self._checked_at is None or time.monotonic() - self._checked_at >= CACHE_SECONDS
            if stale:
                self._on = is_on(self._db)
                self._checked_at = time.monotonic()
            return self._on
