"""The CPUs a process may use (affinity, cgroup quota) and the worker defaults sized from them:
in-process, against cgroup files written into a temporary directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from wavforge import capacity
from wavforge.capacity import default_worker_threads, usable_cpus
from wavforge.config import Settings


@pytest.fixture
def cores(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process may run on 8 cores, whatever the machine has."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def usable(root: Path, proc_cgroup: str) -> int:
    write(root.parent / "proc-self-cgroup", proc_cgroup)
    return usable_cpus(cgroup_root=root, proc_cgroup=root.parent / "proc-self-cgroup")


@pytest.mark.usefixtures("cores")
def test_no_quota_leaves_the_affinity(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    write(root / "cpu.max", "max 100000\n")
    assert usable(root, "0::/\n") == 8


@pytest.mark.usefixtures("cores")
def test_a_cgroup_v2_quota_caps_the_affinity_rounded_up(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    write(root / "cpu.max", "150000 100000\n")  # docker run --cpus 1.5
    assert usable(root, "0::/\n") == 2


@pytest.mark.usefixtures("cores")
def test_the_tightest_quota_of_the_cgroup_and_its_ancestors_counts(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    write(root / "system.slice" / "cpu.max", "300000 100000\n")
    write(root / "system.slice" / "wavforge-worker@1.service" / "cpu.max", "400000 100000\n")
    write(root / "user.slice" / "cpu.max", "100000 100000\n")  # not this process's
    assert usable(root, "0::/system.slice/wavforge-worker@1.service\n") == 3


@pytest.mark.usefixtures("cores")
def test_a_cgroup_v1_quota_counts(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    own = root / "cpu,cpuacct" / "kubepods" / "pod1"
    write(own / "cpu.cfs_quota_us", "200000\n")
    write(own / "cpu.cfs_period_us", "100000\n")
    assert usable(root, "5:memory:/kubepods/pod1\n4:cpu,cpuacct:/kubepods/pod1\n0::/\n") == 2


@pytest.mark.usefixtures("cores")
def test_a_cgroup_v1_quota_of_minus_one_is_none(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    write(root / "cpu" / "cpu.cfs_quota_us", "-1\n")
    write(root / "cpu" / "cpu.cfs_period_us", "100000\n")
    assert usable(root, "2:cpu:/\n") == 8


@pytest.mark.usefixtures("cores")
def test_a_host_path_missing_in_the_container_falls_back_to_the_mount_point(
    tmp_path: Path,
) -> None:
    """Docker without a cgroup namespace: /proc/self/cgroup names the host's path, while the
    container sees its own cgroup at the mount point."""
    root = tmp_path / "cgroup"
    write(root / "cpu" / "cpu.cfs_quota_us", "300000\n")
    write(root / "cpu" / "cpu.cfs_period_us", "100000\n")
    assert usable(root, "3:cpu:/docker/0123abcd\n") == 3


@pytest.mark.usefixtures("cores")
def test_the_affinity_caps_a_looser_quota(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    write(root / "cpu.max", "1600000 100000\n")
    assert usable(root, "0::/\n") == 8


@pytest.mark.usefixtures("cores")
def test_a_quota_under_one_cpu_still_gives_one(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    write(root / "cpu.max", "50000 100000\n")
    assert usable(root, "0::/\n") == 1


@pytest.mark.usefixtures("cores")
def test_no_cgroup_files_or_unreadable_ones_leave_the_affinity(tmp_path: Path) -> None:
    assert usable_cpus(cgroup_root=tmp_path / "none", proc_cgroup=tmp_path / "none") == 8
    root = tmp_path / "cgroup"
    write(root / "cpu.max", "garbage\n")
    assert usable(root, "0::/\n") == 8


def test_without_an_affinity_mask_the_cpu_count_counts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert usable_cpus(cgroup_root=tmp_path, proc_cgroup=tmp_path / "none") == 6


def test_this_process_has_at_least_one() -> None:
    assert usable_cpus() >= 1


@pytest.mark.parametrize(("cpus", "threads"), [(1, 2), (2, 4), (16, 32), (32, 64), (96, 64)])
def test_two_worker_threads_per_usable_cpu_at_most_64(
    monkeypatch: pytest.MonkeyPatch, cpus: int, threads: int
) -> None:
    monkeypatch.setattr(capacity, "usable_cpus", lambda: cpus)
    assert default_worker_threads() == threads


def test_settings_size_the_worker_from_the_machine_unless_told(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(capacity, "usable_cpus", lambda: 3)
    monkeypatch.delenv("WAVFORGE_WORKER_THREADS", raising=False)
    assert Settings(data_dir=tmp_path).worker_threads == 6
    monkeypatch.setenv("WAVFORGE_WORKER_THREADS", "1")
    assert Settings(data_dir=tmp_path).worker_threads == 1
