"""A test file for newcomers: a few seconds of a chord, encoded with PyAV's own LAME.

Someone trying the service on a fresh machine may have no music file at hand and no
``ffmpeg`` command; PyAV, which wavforge needs anyway, can encode one.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

__all__ = ["write_chord_mp3"]

RATE = 44_100
CHORD_HZ = (220.0, 277.18, 329.63)  # A major
BLOCK = 1152  # one MP3 frame's samples


def write_chord_mp3(path: Path, seconds: float) -> None:
    """A stereo MP3 at 192 kb/s: the chord, fading in and out, a little wider on the right."""
    frames = int(seconds * RATE)
    t = np.arange(frames) / RATE
    tone = sum(np.sin(2 * np.pi * hz * t) for hz in CHORD_HZ) / len(CHORD_HZ)
    fade = np.minimum(1.0, np.minimum(t, seconds - t) / 0.5)
    left = 0.5 * tone * fade
    right = 0.5 * np.sin(2 * np.pi * CHORD_HZ[0] * 2 * t + 0.3) * fade * 0.6 + 0.4 * left
    samples = np.stack([left, right]).astype(np.float32)
    with av.open(str(path), "w", format="mp3") as container:
        stream = container.add_stream("libmp3lame", rate=RATE, layout="stereo")
        stream.bit_rate = 192_000
        for start in range(0, frames, BLOCK):
            chunk = np.ascontiguousarray(samples[:, start : start + BLOCK])
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
            frame.sample_rate, frame.pts, frame.time_base = RATE, start, Fraction(1, RATE)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
