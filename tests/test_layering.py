"""The architecture holds: layering contracts, no package cycles, one door to threads."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
THREADPOOL = "from fastapi.concurrency import run_in_threadpool\n"


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache"], cwd=root, env=env, capture_output=True, text=True
    )


def test_the_layering_contracts_hold() -> None:
    checked = _lint_imports(ROOT)
    assert checked.returncode == 0, checked.stdout
    assert "0 broken" in checked.stdout


def test_a_core_module_that_imports_observability_breaks_a_contract(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "src" / "wavforge", tmp_path / "src" / "wavforge")
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    telemetry = tmp_path / "src" / "wavforge" / "core" / "telemetry.py"
    telemetry.write_text(telemetry.read_text() + "\nimport wavforge.observability.metrics\n")
    checked = _lint_imports(tmp_path)
    assert checked.returncode != 0
    assert "The core does not know the web, the console or observability BROKEN" in checked.stdout


def test_no_two_packages_import_each_other() -> None:
    graph = grimp.build_graph("wavforge", cache_dir=None)
    packages = sorted({m.split(".")[1] for m in graph.modules if m.count(".") >= 1})
    both_ways = [
        (a, b)
        for a in packages
        for b in packages
        if a < b and _imports(graph, a, b) and _imports(graph, b, a)
    ]
    assert both_ways == []


def _imports(graph: grimp.ImportGraph, importer: str, imported: str) -> bool:
    return graph.direct_import_exists(
        importer=f"wavforge.{importer}", imported=f"wavforge.{imported}", as_packages=True
    )


def test_only_the_door_hands_request_work_to_threads() -> None:
    """Database work goes through ``Database.run`` and its siblings, other blocking work
    through ``wavforge.offload.in_thread``: a module that picks a thread itself fails ruff."""
    elsewhere = subprocess.run(
        ["ruff", "check", "--stdin-filename", "src/wavforge/http/routes/listing.py", "-"],
        input=THREADPOOL, cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert elsewhere.returncode == 1 and "TID251" in elsewhere.stdout
    calls = [p for p in (ROOT / "src").rglob("*.py") if "run_in_threadpool(" in p.read_text()]
    assert calls == []


def test_outbound_is_entered_by_its_door() -> None:
    """Callers import ``wavforge.outbound``, never its modules: what the service sends out
    can change inside without touching them."""
    graph = grimp.build_graph("wavforge", cache_dir=None)
    inner = {m for m in graph.modules if m.startswith("wavforge.outbound.")}
    through_a_side_door = sorted(
        (importer, module)
        for module in inner
        for importer in graph.find_modules_that_directly_import(module)
        if not importer.startswith("wavforge.outbound")
    )
    assert through_a_side_door == []
