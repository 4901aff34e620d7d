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


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "—"


def iso(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") + "Z" if value else ""


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes, rest = divmod(float(seconds), 60)
    return f"{int(minutes)}:{rest:04.1f}"


def percent(fraction: float | None) -> str:
    return f"{round((fraction or 0) * 100)} %"


def status_label(status: WavStatus | str | None) -> str:
    return STATUS_LABELS[WavStatus(status)][0] if status else "Not converted"


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
    return [
        (label, _analysis_value(name, analysis[name]))
        for name, label in ANALYSIS_LABELS.items()
        if name in analysis
    ]


def _analysis_value(name: str, value: object) -> str:
    if value is None:
        return "silent" if name in ("peakDbfs", "truePeakDbtp", "integratedLoudness") else "—"
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
            return f"{value} Hz"
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
    "percent": percent,
    "status_label": status_label,
    "status_tone": status_tone,
}
TESTS = {"unfinished": is_unfinished, "failed": is_failed}
