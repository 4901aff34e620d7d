"""The client's own tests talk to a running wavforge server, named by the environment:
``WAVFORGE_URL`` and ``WAVFORGE_API_KEY`` (a key with a few credits). Without them the
tests fail and say so, rather than skip: a skipped suite proves nothing."""

from __future__ import annotations

import io
import math
import os
import socket
import struct
import wave

import pytest


@pytest.fixture(scope="session")
def server_url() -> str:
    return _required("WAVFORGE_URL")


@pytest.fixture(scope="session")
def api_key() -> str:
    return _required("WAVFORGE_API_KEY")


@pytest.fixture(scope="session")
def tone() -> bytes:
    """Half a second of a 16-bit stereo 440 Hz tone as a WAV file, made with the stdlib."""
    rate, frames = 44_100, 22_050
    samples = (round(12_000 * math.sin(2 * math.pi * 440 * n / rate)) for n in range(frames))
    data = b"".join(struct.pack("<hh", s, -s) for s in samples)
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(data)
    return out.getvalue()


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"set {name}: these tests run against a wavforge server", pytrace=False)
    return value
