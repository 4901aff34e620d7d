"""Audio engine: probe local files and convert them, streaming and bit-exact, to WAV.

Everything PyAV/FFmpeg-specific stays inside this package; callers only see the names below.
They are loaded on first use: settings and the key commands need ``wavforge.audio.options``
but not numpy and FFmpeg, which take a third of a second to load.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wavforge.audio.analysis import Analysis
    from wavforge.audio.engine import ConversionResult, ProgressCallback, convert, measure_peaks
    from wavforge.audio.errors import (
        AudioError,
        ConversionFailed,
        LimitExceeded,
        UnsupportedAudio,
    )
    from wavforge.audio.options import Limits, OutputOptions
    from wavforge.audio.peaks import Waveform
    from wavforge.audio.sources import AudioInfo, probe

_HOMES = {
    "Analysis": "analysis",
    "AudioError": "errors",
    "AudioInfo": "sources",
    "ConversionFailed": "errors",
    "ConversionResult": "engine",
    "LimitExceeded": "errors",
    "Limits": "options",
    "OutputOptions": "options",
    "ProgressCallback": "engine",
    "UnsupportedAudio": "errors",
    "Waveform": "peaks",
    "convert": "engine",
    "measure_peaks": "engine",
    "probe": "sources",
}
__all__ = [
    "Analysis",
    "AudioError",
    "AudioInfo",
    "ConversionFailed",
    "ConversionResult",
    "LimitExceeded",
    "Limits",
    "OutputOptions",
    "ProgressCallback",
    "UnsupportedAudio",
    "Waveform",
    "convert",
    "measure_peaks",
    "probe",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'wavforge.audio' has no attribute {name!r}")
    return getattr(import_module(f"wavforge.audio.{home}"), name)
