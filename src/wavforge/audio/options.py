"""What a client may ask of the output WAV (CONTRACT §9), and the operator's safety limits.

Both dialects and the command line build an :class:`OutputOptions`; the rule "float requires
32 bits" and the accepted ranges live here only, so no front end can drift from another.
Error messages use the caller's own spelling of the field names (``bitDepth`` in the Suno
dialect, ``bit_depth`` in the unified one, ``--bit-depth`` on the command line).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "BIT_DEPTHS",
    "MAX_SAMPLE_RATE",
    "MIN_SAMPLE_RATE",
    "SAMPLE_FORMATS",
    "Limits",
    "OutputOptions",
]

BIT_DEPTHS = (16, 24, 32)
SAMPLE_FORMATS = ("int", "float")
MIN_SAMPLE_RATE = 8_000
MAX_SAMPLE_RATE = 192_000
GIB = 1 << 30
# Largest data chunk a plain RIFF file can describe: the RIFF size field is 32 bits and also
# covers the WAVE tag, the fmt/fact/LIST chunks and the data chunk header.
RIFF_DATA_LIMIT = 0xFFFFFFFF - 4096


@dataclass(frozen=True)
class OutputOptions:
    """A request for the output format; ``None`` means "as the source" (CONTRACT §9)."""

    bit_depth: int | None = None
    sample_format: str | None = None
    sample_rate: int | None = None

    @classmethod
    def parse(cls, values: Mapping[str, object], names: Mapping[str, str]) -> OutputOptions:
        """Validate raw values, keyed by field name; raise ``ValueError`` naming what is wrong.

        ``names`` maps ``bit_depth``/``sample_format``/``sample_rate`` to the caller's own
        spelling, used only in messages.
        """
        depth = _optional_int(values.get("bit_depth"), names["bit_depth"])
        fmt = values.get("sample_format")
        rate = _optional_int(values.get("sample_rate"), names["sample_rate"])
        if depth is not None and depth not in BIT_DEPTHS:
            raise ValueError(f"{names['bit_depth']} must be 16, 24 or 32")
        if fmt is not None and fmt not in SAMPLE_FORMATS:
            raise ValueError(f'{names["sample_format"]} must be "int" or "float"')
        if fmt == "float" and depth not in (None, 32):
            raise ValueError(f'{names["sample_format"]} "float" requires {names["bit_depth"]} 32')
        if rate is not None and not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
            raise ValueError(
                f"{names['sample_rate']} must be between {MIN_SAMPLE_RATE} and {MAX_SAMPLE_RATE}"
            )
        return cls(
            bit_depth=depth, sample_format=fmt if isinstance(fmt, str) else None, sample_rate=rate
        )

    def as_dict(self) -> dict[str, object]:
        """Only the fields that were asked for, for storing with a task."""
        return {k: v for k, v in vars(self).items() if v is not None}

    def key(self) -> str:
        """The format's identity: a track holds one live WAV per key.

        Built from :meth:`as_dict` alone (compact JSON, sorted keys), so a field added to this
        class takes part with no other change; ``""`` for the default format, the one every
        vendor client asks for by sending no options.
        """
        asked = self.as_dict()
        return json.dumps(asked, sort_keys=True, separators=(",", ":")) if asked else ""


@dataclass(frozen=True)
class Limits:
    """Operator limits a conversion must stay inside; checked before and while decoding."""

    max_duration_seconds: float = 4 * 3600
    max_output_bytes: int = 8 * GIB
    # Data sizes above this are written as RF64; lowered by tests to prove that path.
    rf64_threshold_bytes: int = RIFF_DATA_LIMIT
    # Processes decoding one long file in parallel (1 = never split).
    parallelism: int = 2


def _optional_int(value: object, name: str) -> int | None:
    """Accept an int (or an integral float/str from loose JSON); refuse booleans and junk."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    raise ValueError(f"{name} must be a whole number")
