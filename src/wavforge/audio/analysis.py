"""What a conversion measured, kept with the task and shown to its owner.

Users doubt "lossless" claims; the analysis lets them check: what the source was, what was
written, how loud it peaked, how many samples had to be clamped, and the WAV's checksum.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["Analysis", "file_sha256", "to_dbfs"]


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

    def to_dict(self) -> dict[str, object]:
        return {_camel(key): value for key, value in asdict(self).items()}


def to_dbfs(peak: float) -> float | None:
    """Peak level in dB relative to full scale, to 0.01 dB; None for silence."""
    return round(20 * math.log10(peak), 2) if peak > 0 and math.isfinite(peak) else None


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, streamed (constant memory)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)
