"""Dispatch through Huey: a message only says "look at row X"; the row decides what happens."""

from wavforge.queue.dispatcher import HueyDispatcher, create_huey
from wavforge.queue.worker import Worker

__all__ = ["HueyDispatcher", "Worker", "create_huey"]
