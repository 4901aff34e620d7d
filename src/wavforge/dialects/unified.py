"""The unified (Vidgo-style) dialect (``/api/generate/...``): ``{code, data, message}``,
snake_case, lower-case status words, ISO times without an offset, ``progress`` 0 to 100."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal

from pydantic import BaseModel, ConfigDict, Field

from wavforge.core.records import MusicRecord, TrackRecord, WavRecord
from wavforge.core.states import Dialect, WavStatus
from wavforge.core.wav_tasks import FIELDS, WavRequest
from wavforge.dialects.suno import DataT, Shape, WavAnalysis, one_of, option
from wavforge.errors import Conflict, InvalidRequest, WavforgeError

WAV_MODEL = "convert-to-wav"
MODELS = (WAV_MODEL,)
STATUS = {
    WavStatus.PENDING: "not_started",
    WavStatus.RUNNING: "running",
    WavStatus.SUCCESS: "finished",
    WavStatus.CALLBACK_EXCEPTION: "finished",  # the WAV exists; only the callback failed
    WavStatus.CREATE_TASK_FAILED: "failed",
    WavStatus.GENERATE_WAV_FAILED: "failed",
}
# The request's fields as this dialect spells them, for the core's messages.
FIELD_NAMES = {name: f"input.{name}" for name in FIELDS}


class SubmitInput(BaseModel):
    model_config = ConfigDict(extra="ignore")

    task_id: str | None = None
    audio_id: str | None = None
    # wavforge extensions, validated by OutputOptions.parse (one rule for every front end)
    bit_depth: Any = option("bit_depth")
    sample_format: Any = option("sample_format")
    sample_rate: Any = option("sample_rate")


class SubmitBody(BaseModel):
    """``POST /api/generate/submit``; lengths, URL and option rules are the core's."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(json_schema_extra={"enum": list(MODELS)})
    callback_url: str | None = None
    input: SubmitInput = Field(default_factory=SubmitInput)

    def to_request(self) -> WavRequest:
        if self.model != WAV_MODEL:
            offered = ", ".join(MODELS)
            raise InvalidRequest(
                f"unknown model {self.model[:64]!r}; this server offers: {offered}"
            )
        given = self.input
        options = {
            "bit_depth": given.bit_depth,
            "sample_format": given.sample_format,
            "sample_rate": given.sample_rate,
        }
        return WavRequest(
            dialect=Dialect.UNIFIED,
            task_id=given.task_id or None,
            audio_id=given.audio_id or None,
            callback_url=self.callback_url or None,
            options=options,
            names=FIELD_NAMES,
        )


def time(value: datetime | None) -> str | None:
    """ISO 8601 in UTC without an offset, as the vendor's examples show: 2025-11-12T10:30:00."""
    return value.strftime("%Y-%m-%dT%H:%M:%S") if value else None


def success(data: Any) -> dict[str, Any]:
    return {"code": 200, "data": data}


def error(err: WavforgeError) -> dict[str, Any]:
    data = {"task_id": err.data} if isinstance(err, Conflict) and err.data else None
    return {"code": err.code, "data": data, "message": err.message}


def submitted(record: WavRecord) -> dict[str, Any]:
    return {
        "task_id": record.id,
        "status": STATUS[record.status],
        "created_time": time(record.created_at),
    }


def wav_status(record: WavRecord) -> dict[str, Any]:
    """The status body, which is also the callback body."""
    files = [{"file_url": record.wav_url, "file_type": "audio"}] if record.wav_url else []
    return _wav(record, files)


def wav_detail(record: WavRecord) -> dict[str, Any]:
    return _wav(record, [{"wav_url": record.wav_url}] if record.wav_url else [])


def _wav(record: WavRecord, files: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "task_id": record.id,
        "status": STATUS[record.status],
        "files": files if STATUS[record.status] == "finished" else [],
        "created_time": time(record.created_at),
        "progress": _percent(record),
        "error_message": record.error_message,
        "analysis": record.analysis,  # wavforge extension: what the conversion measured
    }


def _percent(record: WavRecord) -> int:
    """100 only once the WAV exists; a failed task keeps the point it reached."""
    if STATUS[record.status] == "finished":
        return 100
    return min(99, int(record.progress * 100))


def callback_body(record: WavRecord) -> dict[str, Any]:
    return wav_status(record)


def music_detail(record: MusicRecord) -> dict[str, Any]:
    return {
        "task_id": record.id,
        "status": "finished",
        "files": [_track(track) for track in record.tracks],
        "created_time": time(record.created_at),
        "progress": 100,
        "error_message": None,
    }


def _track(record: TrackRecord) -> dict[str, Any]:
    return {
        "audio_id": record.id,
        "audio_url": record.audio_url,
        "image_url": None,
        "title": record.title,
        "tags": record.tags,
        "duration": record.duration,
        "prompt": record.prompt,
    }


# What the OpenAPI schema promises; as in the Suno dialect, only a description of the dicts above.

IsoTime = Annotated[
    str, Field(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$", examples=["2025-11-12T10:30:00"])
]
STATUSES = sorted(set(STATUS.values()))


class Answer(Shape, Generic[DataT]):
    """Every success: ``{"code": 200, "data": ...}``."""

    code: Literal[200]
    data: DataT


class UnifiedExistingTask(Shape):
    task_id: str = Field(description="The live WAV task that already holds the track.")


class UnifiedError(Shape):
    """Every error; the HTTP status equals ``code``."""

    code: int = Field(ge=400, le=599)
    data: None
    message: str = Field(min_length=1, description="Why, in words; never internals.")


class UnifiedConflict(Shape):
    """A 409: ``data`` names the existing task (null when an idempotent request is running)."""

    code: Literal[409]
    data: UnifiedExistingTask | None
    message: str = Field(min_length=1)


class TaskSubmitted(Shape):
    task_id: str
    status: str = one_of(STATUSES)
    created_time: IsoTime


class StatusFile(Shape):
    file_url: str
    file_type: Literal["audio"]


class DetailFile(Shape):
    wav_url: str


class UnifiedTrack(Shape):
    audio_id: str
    audio_url: str
    image_url: None
    title: str
    tags: str
    duration: float
    prompt: str


class _Task(Shape):
    task_id: str
    status: str = one_of(STATUSES)
    created_time: IsoTime
    progress: int = Field(ge=0, le=100)
    error_message: str | None


class WavTaskStatus(_Task):
    """A WAV task in ``status`` (and the callback body); ``files`` empty until finished."""

    files: list[StatusFile]
    analysis: WavAnalysis | None


class WavTaskDetail(_Task):
    """A WAV task in ``detail/music``."""

    files: list[DetailFile]
    analysis: WavAnalysis | None


class MusicDetail(_Task):
    """An imported music task, in either endpoint."""

    files: list[UnifiedTrack]
