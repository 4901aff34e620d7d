"""Ports and process trees on this machine, read from the kernel (``/proc``)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from contextlib import suppress
from pathlib import Path


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (which may hold spaces); None once
    the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (converter children and their helpers), children first."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := proc_stat(int(entry))):
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, queue = [], list(children.get(pid, []))
    while queue:
        child = queue.pop(0)
        found.append(child)
        queue += children.get(child, [])
    return found


def signal_all(pids: list[int], signum: signal.Signals) -> None:
    """Send ``signum`` to each of ``pids`` that still exists."""
    for pid in pids:
        with suppress(ProcessLookupError):
            os.kill(pid, signum)


def stop_or_kill(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """SIGTERM, and the process must be gone within ``timeout``; if not, it and its children
    are killed (so nothing outlives the test that started it) and the test fails."""
    tree = descendants(process.pid)
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        signal_all([process.pid, *descendants(process.pid), *tree], signal.SIGKILL)
        process.wait()
        raise AssertionError(f"pid {process.pid} ignored SIGTERM for {timeout:g} s") from None


def converters(pid: int) -> list[int]:
    """The converter children below ``pid`` (named ``wf-convert`` or ``wf-probe``), without
    the fork server they are forked from: freezing that would stop the server's own exit."""
    found = []
    for child in descendants(pid):
        with suppress(OSError):
            if Path(f"/proc/{child}/comm").read_text().startswith("wf-"):
                found.append(child)
    return found
