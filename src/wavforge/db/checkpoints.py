"""SQLite's WAL checkpoints, off the request path.

In WAL mode SQLite copies the log back into the database file (a checkpoint) once the log
passes 1,000 pages, inside the COMMIT that crossed the line. A submission writes about 15
pages, so under a burst of submissions that was one commit in sixty or so, taking 5 to 14 ms
while it held the writer's turn (see ``WriterQueue``): the other API processes' writers, and
so their whole event loops, waited behind it. So a thread of each process checkpoints every
100 ms instead, outside the writer's turn: a passive checkpoint runs beside writers and
readers, and ``sqlite3`` releases the GIL while it works. Connections still checkpoint
themselves past 40,000 pages (160 MB), a safety net for a process without the thread and
for a log the thread cannot keep short (SQLite restarts the log only when a writer finds it
fully copied, which a steady stream of writes postpones); after a burst the log file is cut
back to 64 MiB.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger(__name__)

AUTOCHECKPOINT_PAGES = 40_000
INTERVAL_SECONDS = 0.1
LOG_SIZE_LIMIT_BYTES = 64 * 1024 * 1024


def leave_the_log_alone(connection: sqlite3.Connection) -> None:
    """Set a connection's automatic checkpoints to the safety net's size."""
    connection.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
    connection.execute(f"PRAGMA journal_size_limit={LOG_SIZE_LIMIT_BYTES}")


class Checkpointer:
    """A thread that checkpoints one SQLite file's log every ``INTERVAL_SECONDS``."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._log = path.with_name(f"{path.name}-wal")
        self._seen: tuple[int, int] | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"checkpoint-{path.name}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()

    def _log_grew(self) -> bool:
        """Whether the log was written since the last look: a checkpoint with nothing to
        copy still costs a fraction of a millisecond, ten times a second in each process,
        which came to 2 % of a core per process while converting on one core; a ``stat`` of
        the log costs microseconds."""
        try:
            stat = self._log.stat()
        except FileNotFoundError:
            return False
        seen = (stat.st_size, stat.st_mtime_ns)
        grew, self._seen = seen != self._seen, seen
        return grew

    def _run(self) -> None:
        connection: sqlite3.Connection | None = None
        last_error = ""
        try:
            while not self._stopping.wait(INTERVAL_SECONDS):
                try:
                    if connection is None:
                        if not self._path.exists():  # not migrated yet
                            continue
                        connection = sqlite3.connect(
                            self._path, isolation_level=None, check_same_thread=False
                        )
                    if not self._log_grew():
                        continue
                    # PASSIVE: copies what it can and waits for no one, writers included.
                    _, frames, copied = connection.execute(
                        "PRAGMA wal_checkpoint(PASSIVE)"
                    ).fetchone()
                    if copied < frames:  # a reader held some back: try again next time
                        self._seen = None
                except sqlite3.Error as error:
                    self._seen = None  # the log is still to copy: try again next time
                    if str(error) != last_error:  # once, not five times a second
                        log.warning("checkpoint of %s failed: %s", self._path.name, error)
                    last_error = str(error)
        finally:
            if connection is not None:
                connection.close()
