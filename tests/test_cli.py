"""The command line, run as a subprocess the way an operator runs it."""

from __future__ import annotations

import json
import wave
from pathlib import Path

from audiogen import ffmpeg_s16, make_mp3
from conftest import Server, wavforge


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
