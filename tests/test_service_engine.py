"""The audio engine as the service runs it: options on the wire, analysis, isolation, limits."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import soundfile

from wavforge.db.models import WavTask

from audiogen import ffmpeg_pcm, make_flac, make_mp3, read_wav
from conftest import Server, import_file, wait_for_source_peaks, wait_for_wav, wait_until
from support.processes import converters
from support.receiver import Receiver


def generate(api: httpx.Client, receiver: Receiver, track_id: str, **extra: Any) -> httpx.Response:
    return api.post(
        "/api/v1/wav/generate", json={"audioId": track_id, "callBackUrl": receiver.url, **extra}
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"bitDepth": 20}, "bitDepth"),
        ({"bitDepth": "deep"}, "bitDepth"),
        ({"bitDepth": True}, "bitDepth"),
        ({"sampleFormat": "double"}, "sampleFormat"),
        ({"sampleFormat": "float", "bitDepth": 16}, "sampleFormat"),
        ({"sampleRate": 7999}, "sampleRate"),
        ({"sampleRate": 400000}, "sampleRate"),
        ({"dither": "rpdf"}, "dither"),
        ({"preset": "loud"}, "preset"),
        ({"preset": "distribution", "bitDepth": 24}, "preset"),
        ({"loudness": "yes"}, "loudness"),
        ({"loudness": 1}, "loudness"),
    ],
)
def test_bad_output_options_are_400_and_leave_the_track_free(
    api: httpx.Client, receiver: Receiver, mp3: Path, body: dict[str, Any], field: str
) -> None:
    track = import_file(api, mp3)["tracks"][0]
    refused = generate(api, receiver, track["id"], **body)
    assert refused.status_code == 400
    envelope = refused.json()
    assert envelope["code"] == 400 and field in envelope["msg"] and envelope["data"] is None
    assert generate(api, receiver, track["id"]).json()["code"] == 200  # nothing half-made


def test_24_bit_request_is_exact_and_analysed(
    api: httpx.Client, receiver: Receiver, tmp_path: Path
) -> None:
    source = make_mp3(tmp_path / "deep.mp3", 2.0, loud=True)
    track = import_file(api, source)["tracks"][0]
    task_id = generate(api, receiver, track["id"], bitDepth=24, loudness=True)
    task_id = task_id.json()["data"]["taskId"]
    (call,) = receiver.wait_for(1)
    wav = httpx.get(call["body"]["data"]["audioWavUrl"], timeout=30).content

    saved = _save(tmp_path, wav)
    data = read_wav(saved).data
    assert data == ffmpeg_pcm(source, "s24le")
    assert soundfile.info(saved).subtype == "PCM_24"
    analysis = wait_for_wav(api, task_id)["analysis"]
    assert analysis["outputBitDepth"] == 24 and analysis["outputEncoding"] == "pcm_s24le"
    assert analysis["sourceCodec"] == "mp3" and analysis["sourceSampleRate"] == 44100
    assert analysis["clippedSamples"] > 0 and analysis["peakDbfs"] > 0  # the loud source
    assert analysis["frames"] * 6 == len(data)
    assert analysis["sha256"] == hashlib.sha256(wav).hexdigest()
    assert analysis["sourceLossy"] is True and analysis["integratedLoudness"] < 0
    assert analysis["truePeakDbtp"] > 0 and analysis["warnings"][0].startswith("clipping")


def test_loudness_is_measured_only_when_asked_and_is_not_a_format(
    api: httpx.Client, receiver: Receiver, tmp_path: Path
) -> None:
    """A plain request (every vendor client's) leaves the three loudness figures null; asking
    for them on the same track and format is still the same WAV (409 naming the live task);
    the unified dialect's ``loudness: true`` on another track measures them."""
    source = make_mp3(tmp_path / "plain.mp3", 2.0)
    plain, asked = (import_file(api, source)["tracks"][0] for _ in range(2))
    first = generate(api, receiver, plain["id"]).json()["data"]["taskId"]
    analysis = wait_for_wav(api, first)["analysis"]
    assert analysis["sha256"] and analysis["peakDbfs"] is not None
    loudness = ("integratedLoudness", "loudnessRange", "truePeakDbtp")
    assert [analysis[name] for name in loudness] == [None, None, None]

    again = generate(api, receiver, plain["id"], loudness=True)
    assert again.status_code == 409 and again.json()["data"] == {"taskId": first}

    body = {"model": "convert-to-wav", "input": {"audio_id": asked["id"], "loudness": True}}
    second = api.post("/api/generate/submit", json=body).json()["data"]["task_id"]
    measured = wait_for_wav(api, second)["analysis"]
    assert -40 < measured["integratedLoudness"] < 0 and measured["loudnessRange"] is not None
    assert measured["truePeakDbtp"] < 1 and measured["sha256"] == analysis["sha256"]


def test_distribution_preset_over_the_unified_dialect(
    api: httpx.Client, receiver: Receiver, tmp_path: Path
) -> None:
    """The preset's WAV and the loudness analysis, in the callback (the status answer) and in
    the Suno record-info alike; the hot source is flagged."""
    source = tmp_path / "hot.wav"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
         "aevalsrc=1.3*sin(2*PI*1000*t)|1.3*sin(2*PI*1000*t):s=48000:d=2",
         "-c:a", "pcm_f32le", str(source)],
        check=True,
    )  # fmt: skip
    track = import_file(api, source)["tracks"][0]
    body = {"model": "convert-to-wav", "callback_url": receiver.url}
    body["input"] = {"audio_id": track["id"], "preset": "distribution"}
    task_id = api.post("/api/generate/submit", json=body).json()["data"]["task_id"]
    (call,) = receiver.wait_for(1)
    facts = call["body"]["data"]["analysis"]
    url = call["body"]["data"]["files"][0]["wav_url"]
    info = soundfile.info(_save(tmp_path, httpx.get(url, timeout=30).content))
    assert (info.samplerate, info.subtype, info.frames) == (44100, "PCM_16", 2 * 44100)
    assert facts["outputSampleRate"] == 44100 and facts["sourceLossy"] is False
    assert facts["integratedLoudness"] is not None and facts["truePeakDbtp"] > 0
    assert [w.split(":")[0] for w in facts["warnings"]] == ["clipping", "true-peak"]
    assert wait_for_wav(api, task_id)["analysis"] == facts  # record-info: the same facts


def test_float_and_resampled_output(api: httpx.Client, receiver: Receiver, tmp_path: Path) -> None:
    source = make_flac(tmp_path / "in.flac", 1.0, rate=44100)
    track = import_file(api, source)["tracks"][0]
    task_id = generate(api, receiver, track["id"], sampleFormat="float", sampleRate=48000).json()[
        "data"
    ]["taskId"]
    (call,) = receiver.wait_for(1)
    info = soundfile.info(_save(tmp_path, httpx.get(call["body"]["data"]["audioWavUrl"]).content))
    assert (info.samplerate, info.subtype, info.frames) == (48000, "FLOAT", 48000)
    assert wait_for_wav(api, task_id)["analysis"]["outputSampleFormat"] == "float"


def test_lossless_source_keeps_its_depth_by_default(
    api: httpx.Client, receiver: Receiver, tmp_path: Path
) -> None:
    source = tmp_path / "hi.flac"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=d=1", "-c:a", "flac",
         "-sample_fmt", "s32", str(source)],
        check=True,
    )  # fmt: skip
    track = import_file(api, source)["tracks"][0]
    generate(api, receiver, track["id"])
    (call,) = receiver.wait_for(1)
    wav = httpx.get(call["body"]["data"]["audioWavUrl"], timeout=30).content
    assert read_wav(_save(tmp_path, wav)).data == ffmpeg_pcm(source, "s24le")


def _save(tmp_path: Path, content: bytes) -> Path:
    path = tmp_path / f"{hashlib.sha256(content).hexdigest()[:8]}.wav"
    path.write_bytes(content)
    return path


# --------------------------------------------------------------------------- isolation


def converter_pids(server: Server) -> list[int]:
    """The server's conversion processes (children of its fork server that named themselves
    ``wf-convert``; import probers are ``wf-probe``)."""
    assert server.process is not None
    pids = []
    for pid in converters(server.process.pid):
        with contextlib.suppress(FileNotFoundError):
            if Path(f"/proc/{pid}/comm").read_text().strip() == "wf-convert":
                pids.append(pid)
    return pids


def lease_renewed(server: Server, task_id: str) -> bool:
    """Whether the task's lease has been renewed since it was claimed. The worker renews it
    only from the heartbeat it beats while it waits on its converter child, so a renewal
    shows that the task has been handed to the child (a second or so after the claim)."""
    with server.database() as db, db.read() as session:
        row = session.get(WavTask, task_id)
    if row is None or row.status != "RUNNING" or row.started_at is None:
        return False
    assert row.lease_expires_at is not None, "a running task has a lease"
    lease = timedelta(seconds=server.settings().lease_seconds)
    return row.lease_expires_at > row.started_at + lease


def test_a_dying_converter_fails_its_task_only(
    own_server: Server, receiver: Receiver, tmp_path: Path
) -> None:
    own_server.extra_env["WAVFORGE_WORKER_THREADS"] = "1"
    own_server.start()
    with own_server.client(own_server.create_key()["key"]) as api:
        _kill_a_converter_mid_task(own_server, api, receiver, tmp_path)


def _kill_a_converter_mid_task(
    own_server: Server, api: httpx.Client, receiver: Receiver, tmp_path: Path
) -> None:
    first = import_file(api, make_mp3(tmp_path / "a.mp3", 2.0))["tracks"][0]
    second = import_file(api, make_mp3(tmp_path / "b.mp3", 2.0))["tracks"][0]
    for track in (first, second):  # the imports' own work done: the next job is the task
        wait_for_source_peaks(api, track["id"])
    (child,) = wait_until(lambda: converter_pids(own_server))

    os.kill(child, signal.SIGSTOP)  # hold it mid-task, then kill it as a segfault would
    doomed = generate(api, receiver, first["id"]).json()["data"]["taskId"]
    wait_until(lambda: lease_renewed(own_server, doomed))  # the stopped child has the task
    os.kill(child, signal.SIGKILL)

    failed = wait_for_wav(api, doomed)
    assert failed["successFlag"] == "GENERATE_WAV_FAILED"
    assert "died" in failed["errorMessage"] and "SIGKILL" in failed["errorMessage"]
    assert failed["response"]["audioWavUrl"] is None
    assert not list((own_server.data_dir / "tmp").iterdir())  # no partial output

    survivor = generate(api, receiver, second["id"]).json()["data"]["taskId"]
    assert wait_for_wav(api, survivor)["successFlag"] == "SUCCESS"
    assert own_server.process is not None and own_server.process.poll() is None
    calls = receiver.wait_for(2)
    assert sorted(c["body"]["code"] for c in calls) == [200, 501]


def test_limits_fail_the_task_with_a_clear_message(
    own_server: Server, receiver: Receiver, tmp_path: Path
) -> None:
    own_server.extra_env["WAVFORGE_MAX_DURATION_SECONDS"] = "1.5"
    own_server.start()
    with own_server.client(own_server.create_key()["key"]) as api:
        track = import_file(api, make_mp3(tmp_path / "long.mp3", 3.0))["tracks"][0]
        task_id = generate(api, receiver, track["id"]).json()["data"]["taskId"]
        failed = wait_for_wav(api, task_id)
    assert failed["successFlag"] == "GENERATE_WAV_FAILED"
    assert "limit" in failed["errorMessage"] and "0:00:01" in failed["errorMessage"]
    assert not list((own_server.data_dir / "tmp").iterdir())
