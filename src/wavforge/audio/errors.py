"""Exceptions raised by the audio engine.

Callers (HTTP layer, worker) only ever see these types: every PyAV/FFmpeg error is translated
inside ``wavforge.audio`` so nothing library-specific leaks out, and ``str(exc)`` is a short
human sentence that is safe to show to an API client (no paths, no tracebacks).
"""

from __future__ import annotations


class AudioError(Exception):
    """Base class for every failure of the audio engine."""


class UnsupportedAudio(AudioError):
    """The input is not audio, or has no audio stream that can be decoded."""


class ConversionFailed(AudioError):
    """Decoding or writing failed part-way through a conversion."""


class LimitExceeded(ConversionFailed):
    """The input breaks an operator limit (duration, output size, memory, CPU or wall time)."""


UNEXPECTED_MESSAGE = "conversion failed unexpectedly"
MEMORY_MESSAGE = "conversion exceeded its memory limit"


def rebuild(error_type: object, message: object) -> AudioError:
    """Recreate an error sent from another process; anything but an ``AudioError`` becomes a
    generic failure, so a child can never make the parent raise an arbitrary type."""
    if isinstance(error_type, type) and issubclass(error_type, AudioError):
        return error_type(str(message))
    return ConversionFailed(UNEXPECTED_MESSAGE)
