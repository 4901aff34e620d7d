"""Which server runs on a data directory, so ``wavforge status`` can say.

``serve`` writes ``server.json`` (its process id and URL) into the data directory while it
runs and removes it when it stops. A file left by a server that was killed names a process
that no longer exists, which :func:`find` notices.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from wavforge.audio.processes import alive
from wavforge.config import Settings

__all__ = ["RunningServer", "find", "running"]

FILE_NAME = "server.json"


@dataclass(frozen=True)
class RunningServer:
    pid: int
    url: str


@contextlib.contextmanager
def running(settings: Settings) -> Iterator[None]:
    """Mark the data directory as served by this process for the duration of the block."""
    path = settings.data_dir / FILE_NAME
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"pid": os.getpid(), "url": settings.base_url}))
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            if _read(path) == RunningServer(os.getpid(), settings.base_url):
                path.unlink()


def find(data_dir: Path) -> RunningServer | None:
    """The server that says it runs on ``data_dir``, if its process is still alive."""
    found = _read(data_dir / FILE_NAME)
    if found is None or not alive(found.pid):
        return None
    return found


def _read(path: Path) -> RunningServer | None:
    try:
        data = json.loads(path.read_text())
        return RunningServer(int(data["pid"]), str(data["url"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
