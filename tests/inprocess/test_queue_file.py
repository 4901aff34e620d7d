"""The SQLite queue (``queue.dispatcher``): a message sent where waiting is not allowed (the
API's event loop, ``db.database.in_place``) while another process holds the queue file is
sent a moment later, not left to the sweep, which would have made its task wait a minute."""

from __future__ import annotations

import threading
from pathlib import Path

from wavforge.config import Settings
from wavforge.db.database import WouldWait, WriterQueue, in_place
from wavforge.queue.dispatcher import HueyDispatcher, create_huey


def test_a_message_sent_in_place_while_the_queue_is_busy_arrives(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, secret_key=None)
    huey = create_huey(settings)
    dispatcher = HueyDispatcher(huey)
    other_process = WriterQueue(Path(f"{settings.queue_path}.writer-lock"))
    sent = threading.Event()

    def hold_the_queue_file() -> None:
        with other_process:
            sent.wait(5)  # until the API has sent (or failed to)

    holder = threading.Thread(target=hold_the_queue_file)
    try:
        holder.start()
        while not _held(settings.queue_path):
            pass
        with in_place():
            dispatcher.convert("task-1")  # does not wait, and does not raise
            dispatcher.deliver("delivery-1")
        sent.set()
        assert huey.pending_count() == 0  # not yet: the file is still held
        holder.join()
        dispatcher.close()  # the late sender's messages are out
        assert huey.pending_count() == 2
    finally:
        sent.set()
        holder.join()
        huey.storage.close()


def _held(queue_path: Path) -> bool:
    """Whether another writer holds the queue file's turn now."""
    probe = WriterQueue(Path(f"{queue_path}.writer-lock"))
    try:
        with in_place(), probe:
            return False
    except WouldWait:
        return True
