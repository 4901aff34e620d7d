"""Audio engine: probe local files and convert them, streaming, to bit-exact 16-bit PCM WAV.

Everything PyAV/FFmpeg-specific stays inside this package; callers only see the names below.
"""

from wavforge.audio.engine import ConversionResult, ProgressCallback, convert
from wavforge.audio.errors import AudioError, ConversionFailed, UnsupportedAudio
from wavforge.audio.probe import AudioInfo, probe

__all__ = [
    "AudioError",
    "AudioInfo",
    "ConversionFailed",
    "ConversionResult",
    "ProgressCallback",
    "UnsupportedAudio",
    "convert",
    "probe",
]
