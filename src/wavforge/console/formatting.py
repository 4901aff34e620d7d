"""How the console shows numbers and times to a person (Jinja filters)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from wavforge.core.states import FAILED, UNFINISHED, WavStatus

# What each state is called on screen, and the badge colour that goes with it.
STATUS_LABELS = {
    WavStatus.PENDING: ("Queued", "waiting"),
    WavStatus.RUNNING: ("Converting", "working"),
    WavStatus.SUCCESS: ("Ready", "good"),
    WavStatus.CALLBACK_EXCEPTION: ("Ready, callback failed", "warn"),
    WavStatus.CREATE_TASK_FAILED: ("Failed", "bad"),
    WavStatus.GENERATE_WAV_FAILED: ("Failed", "bad"),
}

# The states a list filters by, as its filter offers them (two failures told apart).
STATE_CHOICES = {
    "NONE": "Never converted",
    WavStatus.PENDING: "Queued",
    WavStatus.RUNNING: "Converting",
    WavStatus.SUCCESS: "Ready",
    WavStatus.CALLBACK_EXCEPTION: "Ready, callback failed",
    WavStatus.CREATE_TASK_FAILED: "Failed to start",
    WavStatus.GENERATE_WAV_FAILED: "Conversion failed",
}

ANALYSIS_LABELS = {  # keyed as stored (camelCase, as the API shows them)
    "sourceFormat": "Source container",
    "sourceCodec": "Source codec",
    "sourceBitRate": "Source bit rate",
    "sourceSampleRate": "Source sample rate",
    "sourceChannels": "Source channels",
    "duration": "Duration",
    "frames": "Sample frames",
    "outputEncoding": "WAV encoding",
    "outputSampleRate": "WAV sample rate",
    "outputChannels": "WAV channels",
    "outputBitDepth": "WAV bit depth",
    "outputSampleFormat": "WAV sample format",
    "sourceLossy": "Source lossy",
    "peakDbfs": "Peak level",
    "truePeakDbtp": "True peak",
    "integratedLoudness": "Integrated loudness",
    "loudnessRange": "Loudness range",
    "clippedSamples": "Clipped samples",
    "warnings": "Warnings",
    "sha256": "SHA-256 of the WAV",
}


# Containers as FFmpeg names them (a demuxer may list every extension it reads), shown as a
# person calls them. A name not listed shows its first part in capitals.
CONTAINERS = {
    "mov,mp4,m4a,3gp,3g2,mj2": "MP4/M4A",
    "matroska,webm": "Matroska/WebM",
    "aac": "AAC (ADTS)",
    "aiff": "AIFF",
    "flac": "FLAC",
    "mp3": "MP3",
    "ogg": "Ogg",
    "wav": "WAV",
    "w64": "Wave64",
    "caf": "CAF",
    "asf": "ASF/WMA",
}

# Codecs as FFmpeg names them, with the long name a person knows (FFmpeg's own long names,
# shortened). PCM names are spelled out by ``_pcm_name``.
CODECS = {
    "mp3": "MP3 (MPEG audio layer 3)",
    "mp3float": "MP3 (MPEG audio layer 3)",
    "mp2": "MP2 (MPEG audio layer 2)",
    "aac": "AAC (Advanced Audio Coding)",
    "alac": "ALAC (Apple Lossless)",
    "flac": "FLAC (Free Lossless Audio Codec)",
    "vorbis": "Vorbis",
    "opus": "Opus",
    "wmav2": "Windows Media Audio 2",
    "ac3": "AC-3 (Dolby Digital)",
    "eac3": "E-AC-3 (Dolby Digital Plus)",
}

SIZE_UNITS = ("bytes", "KB", "MB", "GB", "TB")


def when(value: datetime | None) -> str:
    """UTC, as the server knows it; ``console.js`` shows ``<time>`` in the reader's zone."""
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def iso(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") + "Z" if value else ""


def duration(seconds: float | None) -> str:
    """A length as a clock shows it: "0:30", "4:05", "1:02:03" (whole seconds, rounded)."""
    if seconds is None:
        return "—"
    minutes, rest = divmod(round(float(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{rest:02d}" if hours else f"{minutes}:{rest:02d}"


def size(count: int | None) -> str:
    """Bytes in decimal units, as a file manager shows them: "900 bytes", "4.2 MB"."""
    if count is None:
        return "—"
    value, unit = float(count), 0
    while value >= 1000 and unit < len(SIZE_UNITS) - 1:
        value, unit = value / 1000, unit + 1
    if unit == 0:
        return f"{count} byte{'' if count == 1 else 's'}"
    return f"{value:.1f} {SIZE_UNITS[unit]}" if value < 100 else f"{value:.0f} {SIZE_UNITS[unit]}"


def container(name: str | None) -> str:
    if not name:
        return "—"
    return CONTAINERS.get(name.lower(), name.split(",")[0].upper())


def codec(name: str | None) -> str:
    if not name:
        return "—"
    if name.startswith("pcm_"):
        return _pcm_name(name)
    return CODECS.get(name.lower(), name.upper())


def _pcm_name(name: str) -> str:
    """``pcm_s24le`` as "PCM, 24-bit signed integer, little-endian"."""
    kind = name.removeprefix("pcm_")
    signs = {"s": "signed integer", "u": "unsigned integer", "f": "floating point"}
    bits = "".join(ch for ch in kind if ch.isdigit())
    if not kind or kind[0] not in signs or not bits:
        return f"PCM ({kind})"
    order = {"le": ", little-endian", "be": ", big-endian"}.get(kind[-2:], "")
    return f"PCM, {bits}-bit {signs[kind[0]]}{order}"


def channels(count: int | None) -> str:
    names = {1: "mono", 2: "stereo"}
    return "—" if count is None else f"{count} ({names[count]})" if count in names else str(count)


def percent(fraction: float | None) -> str:
    return f"{round((fraction or 0) * 100)} %"


def status_label(status: WavStatus | str | None) -> str:
    return STATUS_LABELS[WavStatus(status)][0] if status else "Not converted"


def state_label(status: WavStatus | str) -> str:
    """A state's name where states are counted side by side: the two failures told apart."""
    return STATE_CHOICES[WavStatus(status)]


def state_choices(allowed: Collection[str]) -> list[tuple[str, str]]:
    """The filter's options (value, label) for the states a list accepts, in a fixed order."""
    return [(str(value), label) for value, label in STATE_CHOICES.items() if value in allowed]


def status_tone(status: WavStatus | str | None) -> str:
    return STATUS_LABELS[WavStatus(status)][1] if status else "none"


def is_unfinished(status: WavStatus | str | None) -> bool:
    return status is not None and WavStatus(status) in UNFINISHED


def is_failed(status: WavStatus | str | None) -> bool:
    return status is not None and WavStatus(status) in FAILED


def analysis_rows(analysis: dict[str, object] | None) -> list[tuple[str, str]]:
    """The analysis as label/value pairs, in the order a person checks them."""
    if not analysis:
        return []
    rows = [
        (label, _shown(name, analysis))
        for name, label in ANALYSIS_LABELS.items()
        if name in analysis
    ]
    if samples := _sample_bytes(analysis):
        at = next((i for i, (label, _) in enumerate(rows) if label.startswith("SHA")), len(rows))
        rows.insert(at, ("WAV audio data", size(samples)))
    return rows


def _sample_bytes(analysis: dict[str, object]) -> int | None:
    """The bytes of samples the WAV holds (its header adds well under a kilobyte)."""
    try:
        frames, count, bits = (
            int(str(analysis[name])) for name in ("frames", "outputChannels", "outputBitDepth")
        )
    except (KeyError, ValueError):
        return None
    return frames * count * bits // 8


LOUDNESS = ("truePeakDbtp", "integratedLoudness", "loudnessRange")


def _shown(name: str, analysis: dict[str, object]) -> str:
    value = analysis[name]
    return _missing(name, analysis) if value is None else _value(name, value)


def _missing(name: str, analysis: dict[str, object]) -> str:
    """What a null figure means. Loudness is measured only when a task asks, so null loudness
    beside a peak level means "not measured", not "silent": a measured file with any signal
    has a true peak (it is never below the sample peak), while its integrated loudness may
    still be null, below the absolute gate."""
    silent = analysis.get("peakDbfs") is None
    measured = analysis.get("truePeakDbtp") is not None
    if name == "peakDbfs" or (silent and name in ("truePeakDbtp", "integratedLoudness")):
        return "silent"
    if name in LOUDNESS and not (measured or silent):
        return "not measured"
    if name == "integratedLoudness":
        return "below -70 LUFS (gated out)"
    return "—"


def _value(name: str, value: object) -> str:
    match name:
        case "sourceLossy":
            return "yes: the WAV holds the decoded samples, not the master" if value else "no"
        case "truePeakDbtp":
            return f"{float(value):+.2f} dBTP"  # type: ignore[arg-type]
        case "integratedLoudness":
            return f"{float(value):.1f} LUFS"  # type: ignore[arg-type]
        case "loudnessRange":
            return f"{float(value):.1f} LU"  # type: ignore[arg-type]
        case "warnings":
            return "; ".join(str(item) for item in value) or "none"  # type: ignore[attr-defined]
        case "duration":
            return f"{duration(float(value))} ({float(value):.3f} s)"  # type: ignore[arg-type]
        case "sourceBitRate":
            return f"{int(value) // 1000} kb/s"  # type: ignore[call-overload]
        case "sourceSampleRate" | "outputSampleRate":
            return f"{int(value):,} Hz"  # type: ignore[call-overload]
        case "sourceFormat":
            return container(str(value))
        case "sourceCodec" | "outputEncoding":
            return codec(str(value))
        case "sourceChannels" | "outputChannels":
            return channels(int(value))  # type: ignore[call-overload]
        case "outputBitDepth":
            return f"{value}-bit"
        case "peakDbfs":
            return f"{float(value):+.2f} dBFS"  # type: ignore[arg-type]
        case "frames" | "clippedSamples":
            return f"{int(value):,}"  # type: ignore[call-overload]
    return str(value)


FILTERS = {
    "when": when,
    "iso": iso,
    "duration": duration,
    "size": size,
    "container": container,
    "codec": codec,
    "channels": channels,
    "percent": percent,
    "status_label": status_label,
    "state_label": state_label,
    "status_tone": status_tone,
}
TESTS = {"unfinished": is_unfinished, "failed": is_failed}
