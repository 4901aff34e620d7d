"""``wavforge import`` and ``convert``: the command line as a client of a running server."""

from __future__ import annotations

import json
import re
import wave
from pathlib import Path
from typing import Any

import pytest
import soundfile

from audiogen import ffmpeg_s16, make_flac, make_mp3
from conftest import MakeServer, Server, wavforge
from support.processes import free_port

# The remote commands speak HTTP; what is behind the server is tested elsewhere in both modes.
pytestmark = pytest.mark.embedded_only

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def client_env(server: Server, key: str) -> dict[str, str]:
    """The key travels in the environment, as the docs advise (arguments show in `ps`)."""
    return server.env | {"WAVFORGE_URL": server.url, "WAVFORGE_API_KEY": key}


def test_convert_a_batch_of_five(server: Server, account: dict[str, Any], tmp_path: Path) -> None:
    sources = tmp_path / "sources"
    sources.mkdir()
    files = [
        make_mp3(sources / f"song{i}.mp3", 1.0 + i / 2, rate=(44100, 48000)[i % 2])
        for i in range(4)
    ]
    (sources / "again").mkdir()
    files.append(make_mp3(sources / "again" / "song0.mp3", 1.0))  # same name as the first
    out = tmp_path / "out"

    result = wavforge(
        "convert", *map(str, files), "--out", str(out), env=client_env(server, account["key"])
    )

    assert result.returncode == 0, result.stderr
    written = sorted(p.name for p in out.iterdir())
    assert written == ["song0-2.wav", "song0.wav", "song1.wav", "song2.wav", "song3.wav"]
    targets = [out / "song0.wav", out / "song1.wav", out / "song2.wav", out / "song3.wav"]
    for source, target in zip([*files[:4], files[4]], [*targets, out / "song0-2.wav"], strict=True):
        with wave.open(str(target)) as reader:
            assert reader.readframes(reader.getnframes()) == ffmpeg_s16(source)
    assert "song3.mp3" in result.stdout and account["key"] not in result.stdout + result.stderr

    # Run again: every WAV is there, so nothing is uploaded, charged or overwritten.
    env = client_env(server, account["key"])
    with server.client(account["key"]) as api:
        balance = api.get("/api/v1/generate/credit").json()["data"]
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    again = wavforge("convert", *map(str, files), "--out", str(out), "--json", env=env)
    assert [o["status"] for o in json.loads(again.stdout)] == ["SKIPPED"] * 5
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps
    with server.client(account["key"]) as api:
        assert api.get("/api/v1/generate/credit").json()["data"] == balance
    # The WAVs gone from the folder: the same files are not uploaded again (their SHA-256 is
    # known), their live WAVs are downloaded again, and nothing is charged.
    with server.client(account["key"]) as api:
        tracks_before = len(api.get("/api/v1/account/tracks").json()["data"])
    for wav in out.iterdir():
        wav.unlink()
    again = wavforge("convert", *map(str, files), "--out", str(out), "--json", env=env)
    assert all(o["ok"] for o in json.loads(again.stdout)), again.stdout
    assert sorted(p.name for p in out.iterdir()) == written
    with server.client(account["key"]) as api:
        assert len(api.get("/api/v1/account/tracks").json()["data"]) == tracks_before
        assert api.get("/api/v1/generate/credit").json()["data"] == balance
    forced = wavforge("convert", str(files[1]), "--out", str(out), "--force", "--json", env=env)
    assert json.loads(forced.stdout)[0]["status"] == "SUCCESS"
    assert (out / "song1.wav").stat().st_mtime_ns != stamps["song1.wav"]


def test_failures_are_named_and_the_rest_still_convert(
    server: Server, account: dict[str, Any], tmp_path: Path
) -> None:
    good = make_mp3(tmp_path / "good.mp3", 1.5)
    lossless = make_flac(tmp_path / "lossless.flac", 1.0)
    notes = tmp_path / "notes.txt"
    notes.write_text("this is not audio")
    truncated = tmp_path / "truncated.mp3"
    truncated.write_bytes(good.read_bytes()[:300])
    out = tmp_path / "out"
    items = [good, notes, lossless, truncated]

    result = wavforge(
        "convert",
        *map(str, items),
        "--out",
        str(out),
        "--bit-depth",
        "24",
        "--loudness",
        "--json",
        env=client_env(server, account["key"]),
        check=False,
    )

    assert result.returncode == 1
    report = json.loads(result.stdout)  # the whole of stdout is one JSON document
    assert [r["item"] for r in report] == [str(p) for p in items]
    assert [r["ok"] for r in report] == [True, False, True, False]
    for failed in (report[1], report[3]):
        assert failed["error"]["code"] == 400
        assert Path(failed["item"]).name in failed["error"]["message"]
        assert Path(failed["item"]).name in result.stderr
    for converted in (report[0], report[2]):
        info = soundfile.info(converted["output"])
        assert info.subtype == "PCM_24" and info.frames == converted["analysis"]["frames"]
        assert converted["status"] == "SUCCESS" and converted["task_id"]
        assert converted["analysis"]["integrated_loudness"] < 0  # --loudness reached the server
    assert sorted(p.name for p in out.iterdir()) == ["good.wav", "lossless.wav"]  # no .part


def test_import_then_convert_by_id(
    server: Server, account: dict[str, Any], mp3: Path, tmp_path: Path
) -> None:
    env = client_env(server, account["key"])
    table = wavforge("import", str(mp3), env=env).stdout
    assert "Song Title" in table and UUID.search(table)  # the track id, whole

    [imported] = json.loads(
        wavforge("import", str(mp3), "--tags", "demo", "--json", env=env).stdout
    )
    assert imported["ok"] and imported["title"] == "Song Title" and imported["error"] is None
    track_id, music_id = imported["track_id"], imported["task_id"]
    [named] = json.loads(
        wavforge("import", str(mp3), "--title", "My Take", "--json", env=env).stdout
    )
    assert named["title"] == "My Take"
    two = wavforge("import", str(mp3), str(mp3), "--title", "x", env=env, check=False)
    assert two.returncode == 2 and "--title" in two.stderr

    [first] = json.loads(
        wavforge("convert", track_id, "--out", str(tmp_path), "--json", env=env).stdout
    )
    assert first["ok"] and Path(first["output"]).name == "Song_Title.wav"  # the track's title
    # Converting again by the music task finds the live WAV (409) and fetches it again.
    [again] = json.loads(
        wavforge(
            "convert", "--task-id", music_id, "--out", str(tmp_path / "2"), "--json", env=env
        ).stdout
    )
    assert again["ok"] and again["task_id"] == first["task_id"]
    # Another format is another WAV, with a task of its own.
    [other] = json.loads(
        wavforge(
            "convert", track_id, "--bit-depth", "32", "--out", str(tmp_path / "3"), "--json",
            env=env,
        ).stdout
    )  # fmt: skip
    assert other["ok"] and other["task_id"] != first["task_id"]
    assert soundfile.info(other["output"]).subtype == "PCM_32"


def test_a_failed_conversion_says_why(make_server: MakeServer, tmp_path: Path) -> None:
    server = make_server(tmp_path, WAVFORGE_MAX_DURATION_SECONDS="2").start()
    try:
        short = make_mp3(tmp_path / "short.mp3", 1.0)
        long = make_mp3(tmp_path / "long.mp3", 3.0)
        env = client_env(server, server.create_key()["key"])
        out = tmp_path / "out"
        result = wavforge("convert", str(short), str(long), "--out", str(out), env=env, check=False)
        assert result.returncode == 1
        [line] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert line.startswith(f"error: {long}: ") and "limit" in line
        assert [p.name for p in out.iterdir()] == ["short.wav"]
    finally:
        server.stop()


def test_unreachable_or_refused_is_exit_3(server: Server, mp3: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    refused = wavforge(
        "convert", str(mp3), "--out", str(out), env=client_env(server, "wf_wrong"), check=False
    )
    assert refused.returncode == 3 and "refused the API key" in refused.stderr
    assert "wf_wrong" not in refused.stdout + refused.stderr
    nobody = client_env(server, "wf_wrong") | {"WAVFORGE_URL": f"http://127.0.0.1:{free_port()}"}
    for command in (["convert", str(mp3), "--out", str(out)], ["import", str(mp3), "--json"]):
        unreachable = wavforge(*command, env=nobody, check=False)
        assert unreachable.returncode == 3 and "cannot reach" in unreachable.stderr
        assert unreachable.stdout == ""
    assert not any(out.iterdir())


def test_usage_errors_are_exit_2(mp3: Path, tmp_path: Path) -> None:
    env = {"WAVFORGE_API_KEY": "wf_unused", "PATH": "/usr/bin:/bin"}
    for args in (
        [],  # nothing to convert
        [str(tmp_path / "missing.mp3")],
        [str(mp3), "--bit-depth", "12"],
        [str(mp3), "--float", "--bit-depth", "16"],
        [str(mp3), "--parallel", "0"],
    ):
        result = wavforge("convert", *args, env=env, check=False)
        assert result.returncode == 2, (args, result.stderr)
    missing_key = wavforge("import", str(mp3), env={"PATH": "/usr/bin:/bin"}, check=False)
    assert missing_key.returncode == 2 and "WAVFORGE_API_KEY" in missing_key.stderr
