"""Files a process leaves in the scratch directory when it dies mid-way, swept away.

Imports stage each file there (``import-<uuid>``) and conversions write their output there
(``<task>.wav.part``) before it is stored. Each request and each conversion deletes its own
files when it ends, even when it fails; a process killed in between cannot. So at start and
at every purge, files of those kinds that nobody has written to for a while are deleted —
a file being written keeps its modification time fresh, and nothing legitimately sits idle
in the middle of an import or a conversion for that long.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

log = logging.getLogger(__name__)

PATTERNS = ("import-*", "*.wav.part")


def sweep(scratch_dir: Path, idle_seconds: float) -> int:
    """Delete staged files idle for ``idle_seconds`` or more; returns how many."""
    if not scratch_dir.is_dir():
        return 0
    cutoff = time.time() - idle_seconds
    deleted = 0
    for pattern in PATTERNS:
        for path in scratch_dir.glob(pattern):
            try:
                if path.is_file() and path.stat().st_mtime < cutoff:
                    path.unlink()
                    deleted += 1
            except FileNotFoundError:
                continue  # its own process finished with it meanwhile
    if deleted:
        log.info("deleted %d stale staged files from %s", deleted, scratch_dir)
    return deleted
