"""The Huey instance and the three messages wavforge sends through it."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from functools import partial
from pathlib import Path
from typing import Any

from huey import Huey, PriorityRedisHuey, SqliteHuey
from huey.storage import SqliteStorage

from wavforge.config import Settings
from wavforge.core import conversion, deliveries, source_peaks
from wavforge.core.context import Context
from wavforge.db.checkpoints import Checkpointer, leave_the_log_alone
from wavforge.db.database import WouldWait, WriterQueue
from wavforge.observability.logs import current_request_id, request_context


def create_huey(settings: Settings) -> Huey:
    """Redis when configured (workers on several machines), else a SQLite file in the data dir.

    Results are never read (the row is the result), so Huey need not store them. Both stores
    honour priorities, which let a finished task's callback overtake queued conversions.
    """
    if settings.redis_url:
        # Blocking pops hand a message to an idle worker as soon as it is enqueued.
        return PriorityRedisHuey(
            settings.queue_name, url=settings.redis_url, results=False, blocking=True
        )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SqliteHuey(
        settings.queue_name,
        filename=str(settings.queue_path),
        results=False,
        timeout=30,
        storage_class=QueueFile,
    )


class QueueFile(SqliteStorage):  # type: ignore[misc]  # huey has no type hints
    """Huey's SQLite queue, as durable as the database and not more, with queued writers.

    Huey leaves SQLite's default ``synchronous=FULL``: an fsync per message, which cost a
    submission about 3 ms here. With ``NORMAL`` (the database's own setting) a power cut may
    lose the newest messages, never corrupt the file; a lost message is no lost task, since
    the sweep re-queues every pending row whose message went missing. Writers of several
    processes take turns, and a thread checkpoints the log, like the database's own (see
    :class:`WriterQueue` and :mod:`wavforge.db.checkpoints`).
    """

    def __init__(self, *args: Any, filename: str = "huey.db", **kwargs: Any) -> None:
        self._writers = WriterQueue(Path(f"{filename}.writer-lock"))
        super().__init__(*args, filename=filename, **kwargs)
        self._checkpointer = Checkpointer(Path(filename))  # as the database's own
        self._checkpointer.start()

    def _create_connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection = super()._create_connection()
        connection.execute("PRAGMA synchronous=NORMAL")
        leave_the_log_alone(connection)
        return connection

    def close(self) -> bool:
        """The storage is done with (``Runtime.close``); Huey itself closes it only before
        forking worker processes, which wavforge does not use."""
        self._checkpointer.stop()
        closed: bool = super().close()
        return closed

    @contextmanager
    def db(self, commit: bool = False, close: bool = False) -> Iterator[sqlite3.Cursor]:
        with self._writers if commit else nullcontext(), super().db(commit, close) as cursor:
            yield cursor


log = logging.getLogger(__name__)

DELIVERY_PRIORITY = 10  # conversions have Huey's default, 0
PEAKS_PRIORITY = -10  # a source's peaks wait behind every conversion queued


class HueyDispatcher:
    """Registers the task functions; they reach the core through a context bound later.

    Binding late breaks the cycle "the context needs a dispatcher, the tasks need a context".
    Each message also carries the id of the request it was sent for (None from the sweep and
    in messages older than the id), and its task runs with that id set, so the log lines of a
    conversion, and of the callbacks it sends, name the request that submitted it.
    """

    def __init__(self, huey: Huey) -> None:
        self.huey = huey
        self._context: Context | None = None
        self._senders: ThreadPoolExecutor | None = None
        self._late_sender = ThreadPoolExecutor(1, thread_name_prefix="enqueue")  # see _send
        self._convert = huey.task(name="wavforge.convert")(self._bound(conversion.run))
        # A callback is milliseconds of work telling a client its file is ready; behind a
        # queue of conversions it would wait for all of them.
        self._deliver = huey.task(name="wavforge.deliver", priority=DELIVERY_PRIORITY)(
            self._bound(self._hand_to_senders)
        )
        # A player's convenience: no conversion waits for one (``core.source_peaks``).
        self._peaks = huey.task(name="wavforge.peaks", priority=PEAKS_PRIORITY)(
            self._bound(source_peaks.run)
        )

    def bind(self, context: Context) -> None:
        self._context = context

    def close(self) -> None:
        """Send the messages handed to the late sender, and let the callbacks being sent
        finish (each within its timeout)."""
        self._late_sender.shutdown(wait=True)
        if self._senders is not None:
            self._senders.shutdown(wait=True)

    def _hand_to_senders(self, context: Context, delivery_id: str) -> None:
        """A callback goes to threads of its own: a receiver that answers slowly holds one
        of those (up to ``callback_timeout``), never a thread that converts. The row holds
        the delivery's state, so one lost here with its process is sent again by the sweep.
        """
        if self._senders is None:
            self._senders = ThreadPoolExecutor(
                context.settings.callback_threads, thread_name_prefix="callback"
            )
        run = partial(_send, context, delivery_id, current_request_id())
        self._senders.submit(run)

    def convert(self, wav_task_id: str) -> None:
        self._send(partial(self._convert, wav_task_id, request_id=current_request_id()))

    def measure_peaks(self, track_id: str) -> None:
        self._send(partial(self._peaks, track_id, request_id=current_request_id()))

    def deliver(self, delivery_id: str, delay: float | None = None) -> None:
        carried = {"request_id": current_request_id()}
        if delay:
            # Huey keeps the schedule in its own store; the row's next_attempt_at backs it up.
            self._send(
                partial(self._deliver.schedule, args=(delivery_id,), kwargs=carried, delay=delay)
            )
        else:
            self._send(partial(self._deliver, delivery_id, **carried))

    def _send(self, enqueue: Callable[[], object]) -> None:
        """Enqueue now, or a moment later from a thread of this dispatcher's own.

        The API sends a submission's message from its event loop on SQLite, where nothing
        may wait for a lock (``db.database.in_place``): when a worker holds the queue file
        just then, the enqueue raises ``WouldWait``. The row is committed by then, so the
        message must still go: left to the sweep, as it once was, the task waited over a
        minute (one submission in a few hundred under a burst). The late sender's thread
        is outside the event loop, so there it waits for the file like any writer.
        """
        try:
            enqueue()
        except WouldWait:
            self._late_sender.submit(_send_late, enqueue)

    def _bound(self, run: Callable[[Context, str], None]) -> Callable[..., None]:
        def task(row_id: str, request_id: str | None = None) -> None:
            if self._context is None:
                raise RuntimeError("dispatcher used before bind()")
            with request_context(request_id):
                run(self._context, row_id)

        return task


def _send_late(enqueue: Callable[[], object]) -> None:
    try:
        enqueue()
    except Exception:
        log.exception("could not enqueue a message; the sweep sends it again")


def _send(context: Context, delivery_id: str, request_id: str | None) -> None:
    with request_context(request_id):
        try:
            deliveries.run(context, delivery_id)
        except Exception:
            log.exception("delivery %s failed; the sweep sends it again", delivery_id)
