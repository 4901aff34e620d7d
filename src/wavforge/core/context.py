"""What the core needs from the outside world, handed in once per process."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from wavforge.config import Settings
from wavforge.core.records import WavRecord
from wavforge.db.database import Database
from wavforge.links import LinkSigner
from wavforge.storage import Storage


class Dispatcher(Protocol):
    """Wakes a worker for a row. A lost message is recovered by the sweep, never by the caller."""

    def convert(self, wav_task_id: str) -> None: ...

    def deliver(self, delivery_id: str) -> None: ...


CallbackRenderer = Callable[[WavRecord], dict[str, Any]]


@dataclass
class Context:
    settings: Settings
    db: Database
    storage: Storage
    links: LinkSigner
    dispatch: Dispatcher
    callback_bodies: Mapping[str, CallbackRenderer]
