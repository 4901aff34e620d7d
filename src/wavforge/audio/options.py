"""What a client may ask of the output WAV (CONTRACT §9), and the operator's safety limits.

Both dialects and the command line build an :class:`OutputOptions`; the rule "float requires
32 bits" and the accepted ranges live here only, so no front end can drift from another.
Error messages use the caller's own spelling of the field names (``bitDepth`` in the Suno
dialect, ``bit_depth`` in the unified one, ``--bit-depth`` on the command line).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "BIT_DEPTHS",
    "DISTRIBUTION",
    "DITHERS",
    "MAX_SAMPLE_RATE",
    "MIN_SAMPLE_RATE",
    "PRESETS",
    "SAMPLE_FORMATS",
    "Limits",
    "OutputOptions",
    "dither_seed",
]

BIT_DEPTHS = (16, 24, 32)
SAMPLE_FORMATS = ("int", "float")
DITHERS = ("none", "tpdf")  # "none" is the default, stored as no option at all
PRESETS = ("distribution",)
# What the distribution preset stands for: what most distributors take (CD audio), with
# triangular dither for the bits it drops.
DISTRIBUTION = {"bit_depth": 16, "sample_format": "int", "sample_rate": 44_100, "dither": "tpdf"}
# Options that change the analysis, not the samples: a WAV asked for with them is the same
# format as one without, so a track still holds one live WAV of it.
_NOT_FORMAT = frozenset({"loudness"})
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
    dither: str | None = None  # "tpdf", or None for none (bit-identical to FFmpeg)
    preset: str | None = None  # "distribution": 44.1 kHz, 16-bit, TPDF, soxr resampling
    # Measure loudness, range and true peak of this WAV. Not part of the format: it changes
    # the analysis, never a sample, so it is left out of :meth:`key`.
    loudness: bool | None = None

    @classmethod
    def parse(cls, values: Mapping[str, object], names: Mapping[str, str]) -> OutputOptions:
        """Validate raw values, keyed by field name; raise ``ValueError`` naming what is wrong.

        ``names`` maps the field names to the caller's own spelling, used only in messages
        (a field it does not list is named as is).
        """
        name = _Names(names)
        depth = _optional_int(values.get("bit_depth"), name["bit_depth"])
        fmt = values.get("sample_format")
        rate = _optional_int(values.get("sample_rate"), name["sample_rate"])
        dither = _choice(values.get("dither"), DITHERS, name["dither"])
        preset = _choice(values.get("preset"), PRESETS, name["preset"])
        loudness = _optional_bool(values.get("loudness"), name["loudness"])
        if depth is not None and depth not in BIT_DEPTHS:
            raise ValueError(f"{name['bit_depth']} must be 16, 24 or 32")
        if fmt is not None and fmt not in SAMPLE_FORMATS:
            raise ValueError(f'{name["sample_format"]} must be "int" or "float"')
        if fmt == "float" and depth not in (None, 32):
            raise ValueError(f'{name["sample_format"]} "float" requires {name["bit_depth"]} 32')
        if rate is not None and not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
            raise ValueError(
                f"{name['sample_rate']} must be between {MIN_SAMPLE_RATE} and {MAX_SAMPLE_RATE}"
            )
        asked = cls(
            bit_depth=depth,
            sample_format=fmt if isinstance(fmt, str) else None,
            sample_rate=rate,
            dither=None if dither == "none" else dither,
            preset=preset,
            loudness=loudness or None,
        )
        if preset is not None:
            if dither == "none":
                raise ValueError(f'{name["preset"]} "{preset}" dithers; leave {name["dither"]} out')
            _check_preset(asked, name)
        return asked

    def resolved(self) -> OutputOptions:
        """The options with the preset's values filled in: what the engine applies."""
        if self.preset != "distribution":
            return self
        resolved = {**DISTRIBUTION, "preset": self.preset, "loudness": self.loudness}
        return OutputOptions(**resolved)  # type: ignore[arg-type]

    def measures_loudness(self, by_default: bool) -> bool:
        """Whether the conversion measures loudness: when asked, when the operator measures
        every conversion (``by_default``), and always for the distribution preset, whose
        warnings are about the true peak.

        Off otherwise because it is dear: FFmpeg's own ``ebur128`` with true peak costs about
        three times the decoding of an MP3 (bench/README.md has the figures).
        """
        return bool(self.loudness) or by_default or self.preset == "distribution"

    def as_dict(self) -> dict[str, object]:
        """Only the fields that were asked for, for storing with a task."""
        return {k: v for k, v in vars(self).items() if v is not None}

    def key(self) -> str:
        """The format's identity: a track holds one live WAV per key.

        Built from :meth:`as_dict` alone (compact JSON, sorted keys), so a field added to this
        class takes part with no other change (unless listed in ``_NOT_FORMAT``); ``""`` for
        the default format, the one every vendor client asks for by sending no options.
        """
        import json  # here, as hashlib below: `wavforge convert-file` should start in a blink

        asked = {k: v for k, v in self.as_dict().items() if k not in _NOT_FORMAT}
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


class _Names(dict[str, str]):
    """The caller's spelling of each field; a field it does not list keeps its own name."""

    def __missing__(self, key: str) -> str:
        return key


def _choice(value: object, allowed: tuple[str, ...], name: str) -> str | None:
    """One of a few words, or absent."""
    if value is None:
        return None
    if not isinstance(value, str) or value not in allowed:
        listed = ", ".join(f'"{word}"' for word in allowed)
        raise ValueError(f"{name} must be one of {listed}")
    return value


def _optional_bool(value: object, name: str) -> bool | None:
    """``true``, ``false`` or absent; JSON booleans only (``"yes"`` or ``1`` is a mistake)."""
    if value is None or isinstance(value, bool):
        return value
    raise ValueError(f"{name} must be true or false")


def _check_preset(asked: OutputOptions, name: Mapping[str, str]) -> None:
    """A preset fixes the format; an option that says otherwise is a mistake, not a wish."""
    for field, value in DISTRIBUTION.items():
        given = getattr(asked, field)
        if given is not None and given != value:
            raise ValueError(
                f'{name["preset"]} "{asked.preset}" sets {name[field]} to {value!r}; '
                f"leave {name[field]} out or send {value!r}"
            )


def dither_seed(name: str) -> int:
    """A dither seed from a name (a task id, a file's name and size): the same name dithers
    the same way, every time and in every process."""
    import hashlib

    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")


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
