"""How many CPUs this process may use, and the defaults sized from that.

``os.cpu_count()`` counts the machine's cores, not the ones a process may run on: a worker
pinned to two cores (``taskset``, a cpuset) or held to two CPUs by a container's quota
(Docker's ``--cpus``, a Kubernetes CPU limit, systemd's ``CPUQuota=``) still sees all of
them, and sizing conversions by it would start far more than can run. This module counts
the cores the scheduler lets this process use, capped by the CPU quota of its cgroup (v2
``cpu.max``, v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``, its own and its ancestors'),
rounded up to whole CPUs, and never less than 1.

Only the standard library: the engine consults it too, and must not import more to do so.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

__all__ = [
    "CONVERSIONS_PER_CPU",
    "MAX_WORKER_THREADS",
    "cgroup_quota",
    "default_worker_threads",
    "usable_cpus",
]

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")

# Conversions one worker process runs at once, per usable CPU. Each runs in a converter child
# process of its own; between two conversions its thread claims the next task, stores the WAV
# and records the result, and with one conversion per core the core would wait meanwhile.
# Measured on 16 cores: two threads per worker left a third of the engine's own speed idle,
# one worker per core with two threads reached 100-104 % of the engine alone on those cores.
CONVERSIONS_PER_CPU = 2
MAX_WORKER_THREADS = 64  # the setting's own upper bound


def usable_cpus(*, cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> int:
    """CPUs this process may use: its affinity mask, capped by its cgroup's CPU quota."""
    cpus = _affinity()
    quota = cgroup_quota(cgroup_root=cgroup_root, proc_cgroup=proc_cgroup)
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(1, cpus)


def default_worker_threads() -> int:
    """Conversion threads (and converter processes) of a worker: two per usable CPU."""
    return min(MAX_WORKER_THREADS, CONVERSIONS_PER_CPU * usable_cpus())


def cgroup_quota(
    *, cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP
) -> float | None:
    """The tightest CPU quota, in CPUs, on this process's cgroup and its ancestors (None:
    no quota, or no cgroup file to read). A quota of 1.5 CPUs is 1.5."""
    quotas = [
        quota
        for directory in _cgroup_dirs(cgroup_root, proc_cgroup)
        if (quota := _quota_in(directory)) is not None
    ]
    return min(quotas, default=None)


def _affinity() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1  # no affinity mask to read (macOS, Windows)


def _cgroup_dirs(root: Path, proc_cgroup: Path) -> list[Path]:
    """Every directory that may hold a CPU quota on this process: its v2 cgroup and its v1
    ``cpu`` cgroup, each with its ancestors up to the mount point.

    In a container with its own cgroup namespace the paths are ``/`` and the mount point is
    the container's own cgroup; without one, a path from ``/proc/self/cgroup`` that is not
    under the mount point is skipped, and its ancestors (the mount point at last) still count.
    """
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        lines = []
    places: list[tuple[Path, str]] = []  # (mount point, path of this process's cgroup)
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and not controllers:
            places.append((root, path))
        elif "cpu" in controllers.split(","):
            places += [(root / "cpu", path), (root / controllers, path)]
    if not places:  # nothing to go by: the mount points themselves, as in a container
        places = [(root, "/"), (root / "cpu", "/")]
    dirs: list[Path] = []
    for mount, path in places:
        parts = [part for part in path.split("/") if part and part not in (".", "..")]
        for depth in range(len(parts), -1, -1):
            directory = mount.joinpath(*parts[:depth])
            if directory not in dirs:
                dirs.append(directory)
    return dirs


def _quota_in(directory: Path) -> float | None:
    """The quota set in one cgroup directory, in CPUs; None when there is none."""
    try:
        quota, _, period = (directory / "cpu.max").read_text().partition(" ")
    except OSError:
        pass
    else:  # cgroup v2: "max 100000" (none) or "150000 100000"
        return _ratio(quota, period)
    try:
        quota = (directory / "cpu.cfs_quota_us").read_text()  # -1: none
        period = (directory / "cpu.cfs_period_us").read_text()
    except OSError:
        return None
    return _ratio(quota, period)


def _ratio(quota: str, period: str) -> float | None:
    try:
        microseconds, per = int(quota.strip()), int(period.strip())
    except ValueError:
        return None  # "max", or a file we do not understand: no limit we can honour
    if microseconds <= 0 or per <= 0:
        return None
    return microseconds / per
