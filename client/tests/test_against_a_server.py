"""The client against a live server: a whole conversion, both clients, and its errors."""

from __future__ import annotations

import asyncio
import io
import wave
from pathlib import Path

import pytest

from wavforge_client import (
    ApiError,
    AsyncClient,
    Client,
    ConnectionFailed,
    Upload,
    WavStatus,
)


def test_a_track_becomes_the_same_samples_as_a_wav(
    server_url: str, api_key: str, tone: bytes, tmp_path: Path
) -> None:
    with Client(server_url, api_key) as wf:
        credits = wf.credit()
        track = wf.import_files([Upload("tone.wav", tone)], title="Tone").tracks[0]
        assert track.title == "Tone" and track.duration == pytest.approx(0.5, abs=0.01)
        task = wf.wait(wf.convert(track), timeout=120)
        assert task.status is WavStatus.SUCCESS, task.error
        path = wf.download_wav(task, tmp_path / "tone.wav")
        assert wf.credit() < credits
        with pytest.raises(ApiError) as again:
            wf.convert(track)  # one live WAV per track and format
        assert again.value.code == 409 and again.value.existing_task_id == task.id
    assert _frames(path.read_bytes()) == _frames(tone)  # a 16-bit source comes back unchanged


def test_the_async_client_reads_the_same_account(server_url: str, api_key: str) -> None:
    async def read() -> tuple[int, int]:
        async with AsyncClient(server_url, api_key) as wf:
            credits = await wf.credit()
            with pytest.raises(ApiError) as unknown:
                await wf.wav_record("0" * 32)
            return credits, unknown.value.code

    credits, code = asyncio.run(read())
    assert credits >= 0 and code == 404


def test_a_wrong_key_is_refused_and_never_shown(server_url: str) -> None:
    with Client(server_url, "wf_not_a_key") as wf, pytest.raises(ApiError) as refused:
        wf.credit()
    assert (refused.value.code, refused.value.status) == (401, 401)
    assert "wf_not_a_key" not in str(refused.value) + repr(refused.value)


def test_no_server_is_a_connection_failure(closed_port: int) -> None:
    with Client(f"http://127.0.0.1:{closed_port}", "wf_any") as wf, pytest.raises(ConnectionFailed):
        wf.credit()


def _frames(wav_bytes: bytes) -> tuple[int, int, int, bytes]:
    with wave.open(io.BytesIO(wav_bytes)) as wav:
        return wav.getnchannels(), wav.getsampwidth(), wav.getframerate(), wav.readframes(-1)
