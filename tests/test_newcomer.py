"""The first minutes, as a newcomer spends them: two terminals, two folders, one service.

Nothing here sets ``WAVFORGE_DATA_DIR``: the commands must find each other through the
per-user data folder (``$XDG_DATA_HOME/wavforge`` here), wherever they are run from.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.processes import free_port


class Terminal:
    """A shell's worth of environment: the user's, with no WAVFORGE_* setting at all."""

    def __init__(self, home: Path, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("WAVFORGE_")}
        self.env["XDG_DATA_HOME"] = str(home / ".local" / "share")

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "wavforge", *args],
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            check=check,
            timeout=60,
        )

    def start(self, *args: str, log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "wavforge", *args],
                cwd=self.folder,
                env=self.env,
                stdout=out,
                stderr=out,
            )


def wait_healthy(url: str, process: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited"
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError("the server did not start")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Terminal, Path]]:
    """``wavforge serve`` started in one folder; a second terminal in another."""
    port = free_port()
    first = Terminal(tmp_path, tmp_path / "projects" / "a")
    log = tmp_path / "serve.log"
    server = first.start("serve", "--port", str(port), log=log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, server)
        yield url, Terminal(tmp_path, tmp_path / "elsewhere" / "b"), log
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def test_a_key_made_in_another_folder_works_against_the_server(
    served: tuple[str, Terminal, Path], tmp_path: Path
) -> None:
    url, second, _ = served
    made = second.run("keys", "create", "--name", "me", "--credits", "3", "--json")
    assert "new one was made" not in made.stderr  # the server's database, found
    key = json.loads(made.stdout)["key"]
    answer = httpx.get(
        f"{url}/api/v1/generate/credit", headers={"Authorization": f"Bearer {key}"}, timeout=10
    )
    assert answer.status_code == 200 and answer.json()["data"] == 3
    assert not list((tmp_path / "elsewhere").rglob("*.db"))  # nothing made where it ran


def test_status_names_the_data_directory_and_the_running_server(
    served: tuple[str, Terminal, Path], tmp_path: Path
) -> None:
    url, second, _ = served
    facts = json.loads(second.run("status", "--json").stdout)
    data = tmp_path / ".local" / "share" / "wavforge"
    assert facts["data_dir"] == str(data)
    assert facts["database"] == str(data / "wavforge.db") and facts["database_exists"] is True
    assert facts["server"]["url"] == url
    assert f"running at {url}" in second.run("status").stdout


def test_the_banner_says_where_to_go(served: tuple[str, Terminal, Path]) -> None:
    url, _, log = served
    text = log.read_text()
    assert f"console {url}/console" in text and "wavforge keys create" in text


def test_a_command_that_makes_a_new_database_says_so(tmp_path: Path) -> None:
    alone = Terminal(tmp_path, tmp_path / "c")
    first = alone.run("keys", "list")
    assert "new one was made" in first.stderr
    assert "new one was made" not in alone.run("keys", "list").stderr
    status = alone.run("status").stdout
    assert "server:         none on this directory" in status


def test_a_second_serve_on_a_taken_port_starts_nothing(
    served: tuple[str, Terminal, Path], tmp_path: Path
) -> None:
    """It fails at the bind, before its worker (or its converter children) could start."""
    url, second, _ = served
    port = url.rsplit(":", 1)[1]
    refused = second.run("serve", "--port", port, check=False)
    assert refused.returncode == 1 and "cannot listen on" in refused.stderr
    assert "wf-convert" not in refused.stderr and "console" not in refused.stderr
    assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200  # the first one serves on
    facts = json.loads(second.run("status", "--json").stdout)
    assert facts["server"]["url"] == url  # and still owns its marker


def test_a_key_without_credits_says_how_to_grant_them(tmp_path: Path) -> None:
    """The first conversion would be refused (a 429 that HTTP clients read as "slow down")."""
    alone = Terminal(tmp_path, tmp_path / "e")
    made = alone.run("keys", "create", "--name", "broke", "--json")
    account = json.loads(made.stdout)["account_id"]
    assert "0 credits" in made.stderr and f"wavforge credits grant {account} 100" in made.stderr
    funded = alone.run("keys", "create", "--name", "rich", "--credits", "5")
    assert "0 credits" not in funded.stderr


def test_piped_key_lists_carry_whole_ids(tmp_path: Path) -> None:
    alone = Terminal(tmp_path, tmp_path / "f")
    made = json.loads(alone.run("keys", "create", "--name", "x", "--json").stdout)
    header, row = alone.run("keys", "list").stdout.splitlines()
    assert header.split("\t")[0] == "key id"
    assert row.split("\t")[:1] == [made["key_id"]] and made["account_id"] in row.split("\t")


def test_a_test_file_for_a_machine_with_no_music(tmp_path: Path) -> None:
    alone = Terminal(tmp_path, tmp_path / "g")
    alone.run("test-file", "song.mp3", "--seconds", "3")
    converted = alone.run("convert-file", "song.mp3", "song.wav", "--json")
    facts = json.loads(converted.stdout)["analysis"]
    assert (facts["sourceCodec"], facts["frames"], facts["outputChannels"]) == ("mp3", 3 * 44100, 2)
    assert facts["peakDbfs"] > -12  # audible, not silence
    again = alone.run("test-file", "song.mp3", check=False)
    assert again.returncode == 2 and "--force" in again.stderr


def test_ids_may_be_given_by_an_unambiguous_start(tmp_path: Path) -> None:
    alone = Terminal(tmp_path, tmp_path / "h")
    made = json.loads(alone.run("keys", "create", "--name", "x", "--json").stdout)
    other = json.loads(alone.run("keys", "create", "--name", "y", "--json").stdout)
    account = made["account_id"]
    granted = alone.run("credits", "grant", account[:12], "7", "--json").stdout
    assert json.loads(granted) == {"account_id": account, "balance": 7}
    assert alone.run("keys", "revoke", made["key_id"][:14]).stdout.strip() == (
        f"revoked {made['key_id']}"
    )
    ambiguous = alone.run("keys", "reset", "key_", check=False)
    assert ambiguous.returncode == 2 and "several key ids" in ambiguous.stderr
    assert other["key_id"] in ambiguous.stderr


def _command_paths(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    for name, sub in getattr(command, "commands", {}).items():
        yield from _command_paths(sub, (*path, name))


def test_every_help_names_values_and_gives_flags_none(tmp_path: Path) -> None:
    """Typer's own labels (``<str>``, ``<bool>`` after a flag) are replaced everywhere."""
    import typer.main

    from wavforge.cli import app

    paths = list(_command_paths(typer.main.get_command(app)))
    assert ("keys", "create") in paths and ("serve",) in paths
    terminal = Terminal(tmp_path, tmp_path / "here")
    terminal.env["COLUMNS"] = "200"
    for path in paths:
        shown = terminal.run(*path, "--help").stdout
        assert not re.search(r"<(bool|str|int|float|path)\b", shown), (path, shown)
    serve = terminal.run("serve", "--help").stdout
    assert re.search(r"--port\s+PORT\s+Listen port \(default: 8000\)", serve)
    assert re.search(r"--no-worker\s+API only", serve)  # a flag takes no value
