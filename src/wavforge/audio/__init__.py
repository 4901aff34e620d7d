"""Audio engine: probe local files and convert them, streaming and bit-exact, to WAV.

Everything PyAV/FFmpeg-specific stays inside this package; callers only see the names below.
"""

from wavforge.audio.analysis import Analysis
from wavforge.audio.engine import ConversionResult, ProgressCallback, convert
from wavforge.audio.errors import AudioError, ConversionFailed, LimitExceeded, UnsupportedAudio
from wavforge.audio.options import Limits, OutputOptions
from wavforge.audio.probe import AudioInfo, probe

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
    "convert",
    "probe",
]
