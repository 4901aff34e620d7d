"""The benchmarks are reports, not tests, but they must start: each imports the test suite's
support package and its neighbours as modules of the repository, which a rename breaks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = sorted(
    path.stem for path in (ROOT / "bench").glob("*.py") if path.stem not in {"__init__", "harness"}
)


def test_every_benchmark_is_listed() -> None:
    assert SCRIPTS == ["callback_latency", "engine", "load", "soak", "throughput"]


@pytest.mark.parametrize("name", SCRIPTS)
def test_a_benchmark_starts_as_the_readme_runs_it(name: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", f"bench.{name}", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout
