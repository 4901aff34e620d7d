"""What a conversion measured, kept with the task and shown to its owner.

Users doubt "lossless" claims; the analysis lets them check: what the source was (and whether
it was lossy, so the WAV holds a decode rather than a master), what was written, how loud it
peaked, how many samples had to be clamped, its loudness and true peak as distributors
measure them, and the WAV's checksum.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["TRUE_PEAK_CEILING_DBTP", "Analysis", "distribution_warnings", "file_sha256", "to_dbfs"]

# The highest true peak streaming services and distributors accept (EBU R128 asks -1 dBTP).
TRUE_PEAK_CEILING_DBTP = -1.0


@dataclass(frozen=True)
class Analysis:
    """One conversion's facts; ``to_dict`` is the ``analysis`` field of the API (camelCase)."""

    source_codec: str
    source_bit_rate: int | None
    source_sample_rate: int
    source_channels: int
    duration: float  # seconds actually written, not what the header claimed
    frames: int
    output_encoding: str
    output_sample_rate: int
    output_channels: int
    output_bit_depth: int
    output_sample_format: str  # "int" or "float"
    peak_dbfs: float | None  # None for digital silence
    clipped_samples: int
    sha256: str | None
    source_lossy: bool = False  # the WAV holds a lossy codec's decode, not the master
    integrated_loudness: float | None = None  # LUFS (BS.1770-4); None for silence
    loudness_range: float | None = None  # LU (EBU Tech 3342)
    true_peak_dbtp: float | None = None  # dBTP, 4x oversampled
    warnings: tuple[str, ...] = ()  # what a distributor would reject: clipping, true peak

    def to_dict(self) -> dict[str, object]:
        fields = {_camel(key): value for key, value in asdict(self).items()}
        fields["warnings"] = list(self.warnings)
        return fields


def distribution_warnings(clipped: int, true_peak_dbtp: float | None) -> tuple[str, ...]:
    """What a distributor would reject, each as ``code: explanation``."""
    found = []
    if clipped:
        found.append(f"clipping: {clipped} samples were clamped to full scale")
    if true_peak_dbtp is not None and true_peak_dbtp > TRUE_PEAK_CEILING_DBTP:
        found.append(
            f"true-peak: {true_peak_dbtp:+.2f} dBTP is above {TRUE_PEAK_CEILING_DBTP:+.1f} dBTP"
        )
    return tuple(found)


def to_dbfs(peak: float) -> float | None:
    """Peak level in dB relative to full scale, to 0.01 dB; None for silence."""
    return round(20 * math.log10(peak), 2) if peak > 0 and math.isfinite(peak) else None


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, streamed (constant memory)."""
    import hashlib  # here: OpenSSL takes milliseconds to load, and most conversions need none

    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)
