"""The command line, run as a subprocess the way an operator runs it."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import wave
from pathlib import Path

import pytest

from audiogen import ffmpeg_s16, make_mp3
from conftest import Server, wavforge

# The local commands call the same core functions that the API tests run in both modes.
pytestmark = pytest.mark.embedded_only


def test_keys_create_list_reset_revoke(own_server: Server) -> None:
    env = own_server.env
    created = json.loads(wavforge("keys", "create", "--name", "ops", "--json", env=env).stdout)
    assert set(created) >= {"key", "key_id", "account_id", "webhook_secret"}
    assert created["webhook_secret"].startswith("whsec_")

    listed = json.loads(wavforge("keys", "list", "--json", env=env).stdout)
    (row,) = listed
    assert row["key_id"] == created["key_id"] and created["key"].startswith(row["prefix"])
    assert created["key"] not in json.dumps(listed)  # only the prefix is kept

    replaced = json.loads(wavforge("keys", "reset", created["key_id"], "--json", env=env).stdout)
    assert replaced["account_id"] == created["account_id"] and replaced["key"] != created["key"]
    states = {
        r["key_id"]: r["revoked"]
        for r in json.loads(wavforge("keys", "list", "--json", env=env).stdout)
    }
    assert states == {created["key_id"]: True, replaced["key_id"]: False}

    wavforge("keys", "revoke", replaced["key_id"], env=env)
    failed = wavforge("keys", "revoke", replaced["key_id"], env=env, check=False)
    assert failed.returncode == 1 and "no active key" in failed.stderr
    human = wavforge("keys", "list", env=env).stdout
    assert "revoked" in human and "ops" in human


def test_convert_file_matches_ffmpeg(own_server: Server, tmp_path: Path) -> None:
    source = make_mp3(tmp_path / "in.mp3", 2.0, rate=48000)
    target = tmp_path / "out.wav"
    result = wavforge("convert-file", str(source), str(target), env=own_server.env)
    assert "48000 Hz" in result.stdout
    with wave.open(str(target)) as reader:
        assert reader.readframes(reader.getnframes()) == ffmpeg_s16(source)


def test_convert_file_preset_dither_and_loudness(own_server: Server, tmp_path: Path) -> None:
    """--json carries the loudness analysis; --preset makes CD audio; bad words exit 2."""
    source = make_mp3(tmp_path / "in.mp3", 2.0, rate=48000)
    target = tmp_path / "cd.wav"
    args = ("convert-file", str(source), str(target), "--preset", "distribution", "--json")
    facts = json.loads(wavforge(*args, env=own_server.env).stdout)["analysis"]
    assert (facts["outputSampleRate"], facts["outputBitDepth"]) == (44100, 16)
    assert facts["sourceLossy"] is True and facts["integratedLoudness"] < 0
    with wave.open(str(target)) as reader:
        assert (reader.getframerate(), reader.getsampwidth()) == (44100, 2)
    plain = wavforge("convert-file", str(source), str(tmp_path / "p.wav"), env=own_server.env)
    assert "LUFS" not in plain.stdout  # measured only when asked for
    loud = ("convert-file", str(source), str(tmp_path / "l.wav"), "--loudness")
    assert "LUFS" in wavforge(*loud, env=own_server.env).stdout
    for bad in (["--dither", "rpdf"], ["--preset", "distribution", "--bit-depth", "24"]):
        refused = wavforge(
            "convert-file", str(source), str(tmp_path / "x.wav"), *bad,
            env=own_server.env, check=False,
        )  # fmt: skip
        assert refused.returncode == 2 and refused.stderr.startswith("error: --")


def test_convert_file_never_replaces_its_input_or_a_file_unasked(
    own_server: Server, tmp_path: Path
) -> None:
    source = make_mp3(tmp_path / "song.mp3", 1.0)
    original = source.read_bytes()
    (tmp_path / "link.mp3").symlink_to(source)
    for target in (source, tmp_path / "." / "song.mp3", tmp_path / "link.mp3"):
        same = wavforge(
            "convert-file", str(source), str(target), "--force", env=own_server.env, check=False
        )
        assert same.returncode == 2 and "that is the input file" in same.stderr
    assert source.read_bytes() == original

    target = tmp_path / "song.wav"
    target.write_bytes(b"mine")
    kept = wavforge("convert-file", str(source), str(target), env=own_server.env, check=False)
    assert kept.returncode == 2 and "--force" in kept.stderr and target.read_bytes() == b"mine"
    wavforge("convert-file", str(source), str(target), "--force", env=own_server.env)
    assert target.read_bytes()[:4] == b"RIFF"


def test_convert_file_refuses_non_audio(own_server: Server, tmp_path: Path) -> None:
    source = tmp_path / "notes.txt"
    source.write_text("hello")
    target = tmp_path / "out.wav"
    result = wavforge("convert-file", str(source), str(target), env=own_server.env, check=False)
    assert result.returncode != 0
    assert result.stderr.strip().startswith("error: notes.txt:")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not target.exists() and not list(tmp_path.glob("*.part"))


def test_invalid_settings_are_refused_clearly(own_server: Server) -> None:
    env = own_server.env | {"WAVFORGE_PORT": "99999"}
    result = wavforge("keys", "list", env=env, check=False)
    assert result.returncode == 1 and "port" in result.stderr


def _typer_request(args: list[str], monkeypatch: pytest.MonkeyPatch) -> object:
    """What the Typer command hands ``convert_file.run`` for ``args``, its usage error, or
    None when it runs nothing (``--help``)."""
    import typer.main

    from wavforge.cli import app, convert_file

    seen: list[object] = []
    monkeypatch.setattr(convert_file, "run", seen.append)
    command = typer.main.get_command(app).commands["convert-file"]  # type: ignore[attr-defined]
    try:
        command.main(args, prog_name="wavforge convert-file", standalone_mode=False)
    except Exception as error:  # click's UsageError, BadParameter, ...
        return error
    return seen[0] if seen else None


def test_convert_file_reads_its_arguments_as_the_typer_command_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``wavforge convert-file`` parses its own arguments and runs without Typer; whatever it
    takes, Typer reads the same way, and whatever Typer refuses, it leaves to Typer."""
    from wavforge.cli import convert_file

    source, out = tmp_path / "in.mp3", str(tmp_path / "out.wav")
    source.write_bytes(b"ID3")
    src = str(source)
    (tmp_path / "folder").mkdir()
    taken = [
        [src, out],
        [src, src],  # refused by the command itself, with its own message
        ["--bit-depth", "24", src, out],
        [src, "--bit-depth=24", out, "--float"],
        [src, out, "--sample-rate", "48000", "--dither", "tpdf", "--preset", "distribution"],
        [src, out, "--json", "--force", "--no-loudness"],
        [src, out, "--loudness", "--bit-depth", "0"],
        [src, out, "--dither", "rpdf", "--sample-rate", "7"],  # the engine refuses these
    ]
    for args in taken:
        assert convert_file.parse(args) == _typer_request(args, monkeypatch), args
    refused = [
        [],
        [src],
        [src, out, "extra"],
        [out, src],  # no such input
        [str(tmp_path / "folder"), out],
        ["-", out],
        [src, out, "--bit-depth"],
        [src, out, "--bit-depth", "x"],
        [src, out, "--bit-depth", "١٦"],  # Arabic-Indic digits
        [src, out, "--sample-rate="],
        [src, out, "--force=1"],
        [src, out, "--bit", "16"],
        [src, out, "-h"],
    ]
    for args in refused:
        assert convert_file.parse(args) is None, args
        assert isinstance(_typer_request(args, monkeypatch), Exception), args
    assert convert_file.parse([src, out, "--help"]) is None
    # Spellings Typer reads but the fast path declines, rather than guess how Typer reads them.
    declined = [
        [src, out, "--bit-depth", "016"],
        [src, out, "--bit-depth", "+16"],
        [src, out, "--bit-depth", "1_6"],
        [src, out, "--bit-depth", "16.0"],
        [src, out, "--force", "--force"],
        [src, out, "--loudness", "--no-loudness"],
        [src, out, "--dither", "--json"],
        [src, out, "--dither", ""],
        ["--", src, out],
        [src, ""],
    ]
    for args in declined:
        assert convert_file.parse(args) is None, args
        assert isinstance(_typer_request(args, monkeypatch), convert_file.Request), args


def test_convert_file_options_are_the_typer_commands() -> None:
    """The fast path knows every option of the command as declared, and no other."""
    import typer.main

    from wavforge.cli import app, convert_file

    command = typer.main.get_command(app).commands["convert-file"]  # type: ignore[attr-defined]
    values: dict[str, str] = {}
    flags: dict[str, tuple[str, bool]] = {}
    for param in command.params:
        if param.param_type_name != "option":
            continue
        if param.is_flag:
            flags |= {opt: (param.name, True) for opt in param.opts}
            flags |= {opt: (param.name, False) for opt in param.secondary_opts}
        else:
            values |= {opt: param.name for opt in param.opts}
    assert (values, flags) == (convert_file.VALUE_OPTIONS, convert_file.FLAGS)


def test_convert_file_starts_without_typer_rich_or_pydantic(tmp_path: Path) -> None:
    """What makes the command slow to start stays unloaded (``-X importtime`` lists every
    import), including settings, whatever ``WAVFORGE_*`` variables other than limits say."""
    source = make_mp3(tmp_path / "in.mp3", 1.0)
    target = tmp_path / "out.wav"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAVFORGE_")}
    env["WAVFORGE_PORT"] = "99999"  # not a limit: convert-file neither reads nor checks it
    ran = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "wavforge", "convert-file", source, target],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    imported = {line.split("|")[-1].strip() for line in ran.stderr.splitlines()}
    assert "wavforge.audio.decoding" in imported  # (what import_module loads has no line)
    heavy = {"typer", "click", "rich", "pydantic", "pydantic_settings", "wavforge.config"}
    assert heavy & imported == set()
    assert ran.stdout.startswith("out.wav: 16-bit PCM") and target.read_bytes()[:4] == b"RIFF"


def test_convert_file_loads_settings_only_for_its_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    from wavforge.audio import Limits
    from wavforge.cli import convert_file
    from wavforge.config import Settings

    assert Settings().audio_limits() == Limits()
    changed = {
        "max_duration_seconds": 60.0,
        "max_output_bytes": 4096,
        "rf64_threshold_bytes": 2048,
        "decode_processes": 3,
    }
    assert {f"WAVFORGE_{name.upper()}" for name in changed} == convert_file.LIMIT_SETTINGS
    assert len(changed) == len(dataclasses.fields(Limits))
    for name, value in changed.items():
        assert Settings(**{name: value}).audio_limits() != Limits(), name
    for name in [*os.environ]:
        if name.upper().startswith("WAVFORGE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("WAVFORGE_PORT", "99999")
    assert convert_file._limits() == Limits()
    monkeypatch.delenv("WAVFORGE_PORT")  # with a limit set, every setting is read and checked
    monkeypatch.setenv("wavforge_max_duration_seconds", "60")  # pydantic ignores the case
    assert convert_file._limits().max_duration_seconds == 60
