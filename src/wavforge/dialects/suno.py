"""The Suno-style dialect (``/api/v1/...``): ``{code, msg, data}``, camelCase, ``successFlag``."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from wavforge.audio.options import BIT_DEPTHS, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, SAMPLE_FORMATS
from wavforge.core.accounts import RotatedSecret
from wavforge.core.delivery_log import DeliveryRecord
from wavforge.core.records import MusicRecord, TrackRecord, WavRecord
from wavforge.core.states import DeliveryStatus, Dialect, WavStatus
from wavforge.core.wav_tasks import WavRequest
from wavforge.errors import Conflict, WavforgeError

MODEL_NAME = "wavforge-import"
# Suno has no RUNNING flag: a task is PENDING until it ends.
SUCCESS_FLAG = {WavStatus.RUNNING: WavStatus.PENDING}
SUCCESS_FLAGS = sorted({SUCCESS_FLAG.get(status, status).value for status in WavStatus})


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
}


def option(name: str) -> Any:
    """An output option: any value reaches the core, whose rule is documented here."""
    return Field(default=None, json_schema_extra=OPTION_SCHEMAS[name])


# The request's fields as this dialect spells them, for the core's messages.
FIELD_NAMES = {
    "task_id": "taskId",
    "audio_id": "audioId",
    "bit_depth": "bitDepth",
    "sample_format": "sampleFormat",
    "sample_rate": "sampleRate",
}


class WavGenerateBody(BaseModel):
    """``POST /api/v1/wav/generate``; lengths, URL and option rules are the core's."""

    model_config = ConfigDict(extra="ignore")

    taskId: str | None = None
    audioId: str | None = None
    callBackUrl: str
    # wavforge extensions, validated by OutputOptions.parse (one rule for every front end)
    bitDepth: Any = option("bit_depth")
    sampleFormat: Any = option("sample_format")
    sampleRate: Any = option("sample_rate")

    def to_request(self) -> WavRequest:
        options = {
            "bit_depth": self.bitDepth,
            "sample_format": self.sampleFormat,
            "sample_rate": self.sampleRate,
        }
        return WavRequest(
            dialect=Dialect.SUNO,
            task_id=self.taskId or None,
            audio_id=self.audioId or None,
            callback_url=self.callBackUrl,
            options=options,
            names=FIELD_NAMES,
        )


def time(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else None


def success(data: Any) -> dict[str, Any]:
    return {"code": 200, "msg": "success", "data": data}


def error(err: WavforgeError) -> dict[str, Any]:
    data = {"taskId": err.data} if isinstance(err, Conflict) and err.data else None
    return {"code": err.code, "msg": err.message, "data": data}


def wav_record(record: WavRecord) -> dict[str, Any]:
    return {
        "taskId": record.id,
        "musicId": record.track_id,
        "musicIndex": record.track_position,
        "callbackUrl": record.callback_url,
        "createTime": time(record.created_at),
        "completeTime": time(record.completed_at),
        "response": {"audioWavUrl": record.wav_url},
        "successFlag": SUCCESS_FLAG.get(record.status, record.status).value,
        "errorCode": record.error_code,
        "errorMessage": record.error_message,
        "analysis": record.analysis,  # wavforge extension: what the conversion measured
    }


def callback_body(record: WavRecord) -> dict[str, Any]:
    data = {"task_id": record.id, "audioWavUrl": record.wav_url, "audio_wav_url": record.wav_url}
    if record.status == WavStatus.SUCCESS:
        return {"code": 200, "msg": "success", "data": data}
    return {"code": record.error_code or 500, "msg": record.error_message or "failed", "data": data}


def track(record: TrackRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "audioUrl": record.audio_url,
        "streamAudioUrl": record.audio_url,
        "imageUrl": None,
        "prompt": record.prompt,
        "modelName": MODEL_NAME,
        "title": record.title,
        "tags": record.tags,
        "createTime": time(record.created_at),
        "duration": record.duration,
    }


def music_record(record: MusicRecord) -> dict[str, Any]:
    return {
        "taskId": record.id,
        "parentMusicId": "",
        "param": json.dumps(record.params, separators=(",", ":")),
        "response": {"taskId": record.id, "sunoData": [track(t) for t in record.tracks]},
        "status": record.status,
        "type": record.kind,
        "errorCode": None,
        "errorMessage": None,
    }


def imported(record: MusicRecord) -> dict[str, Any]:
    return {"taskId": record.id, "tracks": [track(t) for t in record.tracks]}


def delivery_log(task_id: str, deliveries: list[DeliveryRecord]) -> dict[str, Any]:
    """wavforge extension: each callback and its attempts, with times like record-info's."""
    return {
        "taskId": task_id,
        "deliveries": [
            {
                "webhookId": delivery.id,
                "url": delivery.url,
                "status": delivery.status,
                "nextAttemptTime": time(delivery.next_attempt_at),
                "attempts": [
                    {
                        "time": time(attempt.started_at),
                        "statusCode": attempt.status_code,
                        "error": attempt.error,
                        "durationMs": attempt.duration_ms,
                    }
                    for attempt in delivery.attempts
                ],
            }
            for delivery in deliveries
        ],
    }


def rotated_secret(rotated: RotatedSecret) -> dict[str, Any]:
    return {
        "webhookSecret": rotated.webhook_secret,
        "previousSecretValidUntil": time(rotated.previous_valid_until),
    }


# What the OpenAPI schema promises. The functions above render plain dicts, and the routes send
# exactly those bytes; these models only describe them (tests/test_fuzz.py checks every answer
# of a running server against the schema, so the two cannot drift apart unnoticed).

DataT = TypeVar("DataT")
Time = Annotated[
    str,
    Field(pattern=r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$", examples=["2026-11-21 10:30:00"]),
]


def one_of(values: Iterable[str | None]) -> Any:
    """A field whose schema lists its values, taken from the code that produces them."""
    listed: list[JsonValue] = list(values)
    return Field(json_schema_extra={"enum": listed})


class Shape(BaseModel):
    """A JSON object of an answer: every field is always sent, and no other."""

    model_config = ConfigDict(extra="forbid")


class Answer(Shape, Generic[DataT]):
    """Every success: ``{"code": 200, "msg": "success", "data": ...}``."""

    code: Literal[200]
    msg: Literal["success"]
    data: DataT


class SunoExistingTask(Shape):
    taskId: str = Field(description="The live WAV task that already holds the track.")


class SunoError(Shape):
    """Every error; the HTTP status equals ``code``."""

    code: int = Field(ge=400, le=599)
    msg: str = Field(min_length=1, description="Why, in words; never internals.")
    data: None


class SunoConflict(Shape):
    """A 409: ``data`` names the existing task (null when an idempotent request is running)."""

    code: Literal[409]
    msg: str = Field(min_length=1)
    data: SunoExistingTask | None


class WavSubmitted(Shape):
    taskId: str = Field(description="The new WAV task.")


class WavFile(Shape):
    audioWavUrl: str | None = Field(description="A signed download link while the file exists.")


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


class WavRecordInfo(Shape):
    taskId: str
    musicId: str = Field(description="The track (audioId).")
    musicIndex: int
    callbackUrl: str | None
    createTime: Time
    completeTime: Time | None
    response: WavFile
    successFlag: str = one_of(SUCCESS_FLAGS)
    errorCode: int | None
    errorMessage: str | None
    analysis: WavAnalysis | None = Field(description="Null until the conversion succeeded.")


class SunoTrack(Shape):
    id: str = Field(description="The track's audioId.")
    audioUrl: str
    streamAudioUrl: str
    imageUrl: None
    prompt: str
    modelName: Literal["wavforge-import"]
    title: str
    tags: str
    createTime: Time
    duration: float


class MusicResponse(Shape):
    taskId: str
    sunoData: list[SunoTrack]


class MusicRecordInfo(Shape):
    taskId: str
    parentMusicId: str
    param: str = Field(description="The import's title, tags and prompt as a JSON string.")
    response: MusicResponse
    status: str
    type: str
    errorCode: None
    errorMessage: None


class ImportedTracks(Shape):
    taskId: str
    tracks: list[SunoTrack]


class DeliveryAttempt(Shape):
    time: Time
    statusCode: int | None
    error: str | None
    durationMs: int


class Delivery(Shape):
    webhookId: str
    url: str
    status: str = one_of(status.value for status in DeliveryStatus)
    nextAttemptTime: Time | None
    attempts: list[DeliveryAttempt]


class DeliveryLog(Shape):
    taskId: str
    deliveries: list[Delivery]


class SecretRotated(Shape):
    webhookSecret: str
    previousSecretValidUntil: Time
