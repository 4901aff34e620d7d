"""The unified dialect (``/api/generate/...``): ``{code, data, message}``, snake_case,
lower-case status words, ISO times without an offset, ``progress`` 0 to 100.

Sold as such by vidgo.ai and PoYo; see docs/api.md for the pages each shape comes from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Generic, Literal

from pydantic import BaseModel, ConfigDict, Field

from wavforge.core.requests import FIELDS, WavRequest
from wavforge.core.states import WavStatus
from wavforge.dialects.base import Dialect
from wavforge.dialects.wire import DataT, Shape, WavAnalysis, one_of, option, options_of
from wavforge.errors import (
    Conflict,
    Forbidden,
    Gone,
    InsufficientCredits,
    InvalidRequest,
    Maintenance,
    NotFound,
    QuotaExceeded,
    ServerError,
    TooFrequent,
    TooLarge,
    Unauthorized,
    WavforgeError,
)

if TYPE_CHECKING:
    from wavforge.config import Settings
    from wavforge.core.records import MusicRecord, TrackRecord, WavRecord

WAV_MODEL = "convert-to-wav"
MODELS = (WAV_MODEL,)
FINISHED = "finished"
STATUS = {
    WavStatus.PENDING: "not_started",
    WavStatus.RUNNING: "running",
    WavStatus.SUCCESS: FINISHED,
    WavStatus.CALLBACK_EXCEPTION: FINISHED,  # the WAV exists; only the callback failed
    WavStatus.CREATE_TASK_FAILED: "failed",
    WavStatus.GENERATE_WAV_FAILED: "failed",
}
# The request's fields as this dialect spells them, for the core's messages.
FIELD_NAMES = {name: f"input.{name}" for name in FIELDS}
NO_MAIL_DOMAIN = "wavforge.invalid"
# The vendors' ``error.type`` words (docs.vidgo.ai/api-manual/error-codes).
ERROR_TYPES: dict[type[WavforgeError], str] = {
    InvalidRequest: "validation_error",
    Unauthorized: "authentication_error",
    Forbidden: "permission_denied_error",
    NotFound: "resource_not_found_error",
    QuotaExceeded: "rate_limit_error",
    Conflict: "conflict_error",
    Gone: "resource_not_found_error",
    TooLarge: "content_too_long_error",
    InsufficientCredits: "insufficient_credits_error",
    TooFrequent: "rate_limit_error",
    Maintenance: "service_error",
    ServerError: "internal_error",
}


def error_type(error: WavforgeError) -> str:
    kind = next((k for k in type(error).__mro__ if k in ERROR_TYPES), ServerError)
    return ERROR_TYPES[kind]


class Unified(Dialect):
    name = "unified"
    prefixes = ("/api/generate/", "/api/user/")
    time_format = "%Y-%m-%dT%H:%M:%S"  # UTC without an offset, as the vendor's examples show
    status_words = STATUS

    def success(self, data: Any) -> dict[str, Any]:
        return {"code": 200, "data": data}

    def error(self, error: WavforgeError, code: int) -> dict[str, Any]:
        """``message`` as wavforge has always sent it, and ``error: {message, type}`` as the
        vendors document it (clients read ``error.message`` and ``error.type``)."""
        data = {"task_id": error.data} if isinstance(error, Conflict) and error.data else None
        kind = {"message": error.message, "type": error_type(error)}
        return {"code": code, "data": data, "message": error.message, "error": kind}

    def callback_body(self, record: WavRecord) -> dict[str, Any]:
        """The status answer, envelope included: the vendor documents the callback as "the
        same structure as the status endpoint response". A failed task is posted the same
        way, with ``status: "failed"``."""
        return self.success(wav_status(record))

    def retry_schedule(self, settings: Settings) -> tuple[float, ...]:
        return settings.callback_retry_unified


UNIFIED = Unified()
time = UNIFIED.time


class SubmitInput(BaseModel):
    model_config = ConfigDict(extra="ignore")

    task_id: str | None = None
    audio_id: str | None = None
    # wavforge extensions, validated by OutputOptions.parse (one rule for every front end)
    bit_depth: Any = option("bit_depth")
    sample_format: Any = option("sample_format")
    sample_rate: Any = option("sample_rate")
    dither: Any = option("dither")
    preset: Any = option("preset")
    loudness: Any = option("loudness")


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
        return WavRequest(
            dialect=UNIFIED.name,
            task_id=given.task_id or None,
            audio_id=given.audio_id or None,
            callback_url=self.callback_url or None,
            options=options_of(given, {name: name for name in FIELDS}),
            names=FIELD_NAMES,
        )


def submitted(record: WavRecord) -> dict[str, Any]:
    return {
        "task_id": record.id,
        "status": STATUS[record.status],
        "created_time": time(record.created_at),
    }


def wav_status(record: WavRecord) -> dict[str, Any]:
    """A WAV task in ``status`` and ``detail/music`` alike (and, in its envelope, the
    callback body). Its file carries ``wav_url``, which music clients and the vendor's music
    webhook read, and ``file_url``/``file_type``, which generic unified clients read."""
    url = record.wav_url
    files = [{"file_url": url, "file_type": "audio", "wav_url": url}] if url else []
    return _wav(record, files)


def _wav(record: WavRecord, files: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "task_id": record.id,
        "status": STATUS[record.status],
        "files": files if STATUS[record.status] == FINISHED else [],
        "created_time": time(record.created_at),
        "progress": _percent(record),
        "error_message": record.error_message,
        "credits_amount": record.credits_charged,  # PoYo: what the task was charged
        "analysis": record.analysis,  # wavforge extension: what the conversion measured
    }


def _percent(record: WavRecord) -> int:
    """100 only once the WAV exists; a failed task keeps the point it reached."""
    if STATUS[record.status] == FINISHED:
        return 100
    return min(99, int(record.progress * 100))


def music_detail(record: MusicRecord) -> dict[str, Any]:
    return {
        "task_id": record.id,
        "status": FINISHED,
        "files": [_track(track) for track in record.tracks],
        "created_time": time(record.created_at),
        "progress": 100,
        "error_message": None,
        "credits_amount": 0,  # an import costs nothing
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


def balance(account_id: str, credits: int) -> dict[str, Any]:
    """The vendors' balance: ``email`` and ``credits_amount``. wavforge accounts have no
    e-mail address; clients require a non-empty one (engels74/poyo-studio's parser refuses
    an empty string), so it is the account id at a reserved domain that cannot receive mail
    (RFC 2606 ``.invalid``)."""
    return {"email": f"{account_id}@{NO_MAIL_DOMAIN}", "credits_amount": credits}


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


class ErrorKind(Shape):
    message: str = Field(min_length=1)
    type: str = one_of(sorted(set(ERROR_TYPES.values())))


class UnifiedError(Shape):
    """Every error; the HTTP status equals ``code`` unless the key's profile says otherwise."""

    code: int = Field(ge=400, le=599)
    data: None
    message: str = Field(min_length=1, description="Why, in words; never internals.")
    error: ErrorKind


class UnifiedConflict(Shape):
    """A 409: ``data`` names the existing task (null when an idempotent request is running)."""

    code: Literal[409]
    data: UnifiedExistingTask | None
    message: str = Field(min_length=1)
    error: ErrorKind


class TaskSubmitted(Shape):
    task_id: str
    status: str = one_of(STATUSES)
    created_time: IsoTime


class WavFile(Shape):
    """A finished conversion's WAV, under each name unified clients read it by."""

    file_url: str
    file_type: Literal["audio"]
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
    credits_amount: int = Field(ge=0, description="Credits the task was charged.")


class WavTaskStatus(_Task):
    """A WAV task in ``status``, ``detail/music`` and the callback body; ``files`` empty
    until finished."""

    files: list[WavFile]
    analysis: WavAnalysis | None


class Balance(Shape):
    email: str = Field(
        description="`<account id>@wavforge.invalid`: wavforge accounts have no e-mail address."
    )
    credits_amount: int


class MusicDetail(_Task):
    """An imported music task, in either endpoint."""

    files: list[UnifiedTrack]


# The dialect's envelopes in the schema; set here because the models come after the class.
Unified.answer_model = Answer
Unified.error_model = UnifiedError
Unified.conflict_model = UnifiedConflict
