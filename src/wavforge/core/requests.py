"""What a front end asks of the core, free of any wire spelling and of any database type.

The dialects and the console build these; ``core.wav_tasks`` checks and accepts them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

FIELDS = (
    "task_id",
    "audio_id",
    "bit_depth",
    "sample_format",
    "sample_rate",
    "dither",
    "preset",
    "loudness",
)


@dataclass(frozen=True)
class WavRequest:
    """A conversion request. ``dialect`` is the name of the dialect whose callback body and
    retry schedule the task's deliveries use (see ``wavforge.dialects``)."""

    dialect: str
    task_id: str | None = None
    audio_id: str | None = None
    callback_url: str | None = None
    # Output options (CONTRACT §9) as sent, keyed bit_depth/sample_format/sample_rate/
    # dither/preset/loudness.
    options: Mapping[str, object] = field(default_factory=dict)
    # How the front end spells each field, so messages name what the client sent.
    names: Mapping[str, str] = field(default_factory=lambda: {f: f for f in FIELDS})
