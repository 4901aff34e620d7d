"""Small process helpers shared by the conversion child (``isolation``, ``child``) and its
decoders (``segments``), and by whatever must tell whether a process recorded in a file still
lives (stale S3 copies, the server marker)."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys

__all__ = ["alive", "die_with_parent", "signal_name"]

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def die_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGKILL this process when its parent dies, so no orphan keeps decoding.

    ``parent_pid`` is the parent as seen before the fork or spawn: if it is already gone, the
    request came too late to fire, and the process exits at once. Elsewhere than Linux the
    process still notices when its pipe to the parent closes, but only between tasks.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        log.warning("prctl(PR_SET_PDEATHSIG) failed: %s", os.strerror(ctypes.get_errno()))
    if os.getppid() != parent_pid:
        os._exit(0)


def signal_name(number: int) -> str:
    """``SIGKILL`` for 9, for messages; the number itself when the signal has no name."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def alive(pid: int) -> bool:
    """Whether a process with this id exists (another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
