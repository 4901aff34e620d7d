"""Wiring: one function builds every part a process needs from its settings."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from huey import Huey

from wavforge.config import Settings
from wavforge.core.context import Context
from wavforge.db import migrate
from wavforge.db.database import Database
from wavforge.dialects import callback_bodies
from wavforge.links import LinkSigner
from wavforge.queue import HueyDispatcher, Worker, create_huey
from wavforge.storage import open_storage


@dataclass
class Runtime:
    context: Context
    huey: Huey

    def worker(self) -> Worker:
        return Worker(self.context, self.huey)

    def close(self) -> None:
        self.context.db.dispose()


def build_runtime(settings: Settings) -> Runtime:
    """Open the database (migrating it), storage and queue, and bind them into a context."""
    settings.scratch_dir.mkdir(parents=True, exist_ok=True)  # once here, not per request
    db = Database(settings.resolved_database_url)
    migrate.upgrade(db)
    huey = create_huey(settings)
    dispatcher = HueyDispatcher(huey)
    context = Context(
        settings=settings,
        db=db,
        storage=open_storage(settings),
        links=LinkSigner(settings.link_secret(), settings.base_url),
        dispatch=dispatcher,
        callback_bodies=callback_bodies(),
    )
    dispatcher.bind(context)
    return Runtime(context=context, huey=huey)


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
