"""Docs that cannot drift: settings, commands and the CI command are checked against the code."""

from __future__ import annotations

import re
from pathlib import Path

from typer.main import get_command

from wavforge.cli import app
from wavforge.config import Settings

from vendors import SOURCES

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_every_setting_is_in_the_readme_table() -> None:
    documented = set(re.findall(r"^\| `(WAVFORGE_[A-Z0-9_]+)` \|", README, re.MULTILINE))
    defined = {f"WAVFORGE_{name.upper()}" for name in Settings.model_fields}
    assert documented == defined


def test_every_command_is_in_the_readme() -> None:
    root = get_command(app)
    names: list[str] = []
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        sub = getattr(command, "commands", None)
        names += [f"wavforge {name} {s}" for s in sub] if sub else [f"wavforge {name}"]
    missing = [name for name in names if f"`{name}" not in README]
    assert missing == []


def test_ci_runs_the_readme_test_command() -> None:
    blocks = re.findall(r"```sh\n(.+?)\n```", README, re.DOTALL)
    run_command, test_command = blocks[0], blocks[1]
    assert "wavforge serve" in run_command
    assert test_command in (ROOT / ".ci" / "run").read_text().splitlines()


def test_the_api_docs_cite_every_vendor_source_of_the_profile_table() -> None:
    """tests/vendors.py says which vendor page each expected code comes from; docs/api.md's
    compatibility and profile tables must cite the same pages."""
    api = (ROOT / "docs" / "api.md").read_text()
    assert [source for source in SOURCES if source not in api] == []
