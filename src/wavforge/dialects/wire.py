"""Wire helpers every dialect shares: schema building blocks and the output options' rules.

Nothing here belongs to one vendor. A dialect module takes these and adds its own names,
envelope and words; the analysis object is a wavforge extension both dialects carry as is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from wavforge.audio.options import (
    BIT_DEPTHS,
    DITHERS,
    MAX_SAMPLE_RATE,
    MIN_SAMPLE_RATE,
    PRESETS,
    SAMPLE_FORMATS,
)

DataT = TypeVar("DataT")

# The output options' accepted values, for the schemas of both dialects; OutputOptions.parse
# checks them (and also takes integral floats and digit strings, as loose JSON clients send).
OPTION_SCHEMAS: dict[str, dict[str, JsonValue]] = {
    "bit_depth": {"anyOf": [{"enum": list(BIT_DEPTHS)}, {"type": "null"}]},
    "sample_format": {
        "anyOf": [{"enum": list(SAMPLE_FORMATS)}, {"type": "null"}],
        "description": '"float" needs a bit depth of 32.',
    },
    "sample_rate": {
        "anyOf": [
            {"type": "integer", "minimum": MIN_SAMPLE_RATE, "maximum": MAX_SAMPLE_RATE},
            {"type": "null"},
        ]
    },
    "dither": {
        "anyOf": [{"enum": list(DITHERS)}, {"type": "null"}],
        "description": '"tpdf": triangular dither of +-1 LSB where bits are dropped.',
    },
    "preset": {
        "anyOf": [{"enum": list(PRESETS)}, {"type": "null"}],
        "description": '"distribution": 44.1 kHz, 16-bit, TPDF dither, soxr resampling.',
    },
    "loudness": {
        "anyOf": [{"type": "boolean"}, {"type": "null"}],
        "description": (
            "true: measure integrated loudness, loudness range and true peak (several times "
            "the cost of the conversion; always on for the distribution preset)."
        ),
    },
}
OPTIONS = tuple(OPTION_SCHEMAS)


def option(name: str) -> Any:
    """An output option: any value reaches the core, whose rule is documented here."""
    return Field(default=None, json_schema_extra=OPTION_SCHEMAS[name])


def options_of(body: BaseModel, spelled: Mapping[str, str]) -> dict[str, object]:
    """The output options of a request body, keyed by the core's names."""
    return {name: getattr(body, spelled[name]) for name in OPTIONS}


def one_of(values: Iterable[str | None]) -> Any:
    """A field whose schema lists its values, taken from the code that produces them."""
    listed: list[JsonValue] = list(values)
    return Field(json_schema_extra={"enum": listed})


class Shape(BaseModel):
    """A JSON object of an answer: every field is always sent, and no other."""

    model_config = ConfigDict(extra="forbid")


class WavAnalysis(Shape):
    """What a conversion measured (wavforge extension)."""

    sourceCodec: str
    sourceBitRate: int | None
    sourceSampleRate: int
    sourceChannels: int
    duration: float = Field(description="Seconds written.")
    frames: int
    outputEncoding: str
    outputSampleRate: int
    outputChannels: int
    outputBitDepth: Literal[16, 24, 32]
    outputSampleFormat: Literal["int", "float"]
    peakDbfs: float | None = Field(description="Peak level; null for digital silence.")
    clippedSamples: int
    sha256: str | None
    sourceLossy: bool = Field(
        default=False, description="A lossy codec's decode: not the original master."
    )
    integratedLoudness: float | None = Field(
        default=None, description="LUFS (ITU-R BS.1770-4); null for silence."
    )
    loudnessRange: float | None = Field(default=None, description="LU (EBU Tech 3342).")
    truePeakDbtp: float | None = Field(default=None, description="dBTP, 4x oversampled.")
    warnings: list[str] = Field(
        default_factory=list, description="Clipping, or a true peak above -1 dBTP."
    )
