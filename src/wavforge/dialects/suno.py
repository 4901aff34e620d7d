"""The Suno-style dialect (``/api/v1/...``): ``{code, msg, data}``, camelCase, ``successFlag``.

Sold as such by sunoapi.org and kie.ai; the vendor profiles (``wavforge.profiles``) choose
how each of them numbers its errors.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any, Generic, Literal

from pydantic import BaseModel, ConfigDict, Field

from wavforge.core.requests import WavRequest
from wavforge.core.states import DeliveryStatus, WavStatus
from wavforge.dialects.base import Dialect
from wavforge.dialects.wire import (
    DataT,
    Shape,
    WavAnalysis,
    one_of,
    option,
    options_of,
)
from wavforge.errors import Conflict, WavforgeError

if TYPE_CHECKING:
    from wavforge.config import Settings
    from wavforge.core.accounts import RotatedSecret
    from wavforge.core.delivery_log import DeliveryRecord
    from wavforge.core.records import MusicRecord, TrackRecord, WavRecord

MODEL_NAME = "wavforge-import"
# Suno has no RUNNING flag: a task is PENDING until it ends.
SUCCESS_FLAG = {status: status.value for status in WavStatus} | {
    WavStatus.RUNNING: WavStatus.PENDING.value
}
SUCCESS_FLAGS = sorted(set(SUCCESS_FLAG.values()))

# The request's fields as this dialect spells them, for the core's messages.
FIELD_NAMES = {
    "task_id": "taskId",
    "audio_id": "audioId",
    "bit_depth": "bitDepth",
    "sample_format": "sampleFormat",
    "sample_rate": "sampleRate",
    "dither": "dither",
    "preset": "preset",
    "loudness": "loudness",
}


class Suno(Dialect):
    name = "suno"
    prefixes = ("/api/v1/",)
    time_format = "%Y-%m-%d %H:%M:%S"
    status_words = SUCCESS_FLAG

    def success(self, data: Any) -> dict[str, Any]:
        return {"code": 200, "msg": "success", "data": data}

    def error(self, error: WavforgeError, code: int) -> dict[str, Any]:
        data = {"taskId": error.data} if isinstance(error, Conflict) and error.data else None
        return {"code": code, "msg": error.message, "data": data}

    def callback_body(self, record: WavRecord) -> dict[str, Any]:
        """The documented ``task_id`` and ``audioWavUrl`` (``audio_wav_url`` on the vendors'
        other pages), plus what real receivers read besides: ``taskId``, the URL nested as
        record-info nests it (``response.audioWavUrl``), and the track (``audioId`` as the
        request named it, ``musicId`` as record-info does). Sources: docs/api.md."""
        url = record.wav_url
        data = {
            "task_id": record.id,
            "audioWavUrl": url,
            "audio_wav_url": url,
            "taskId": record.id,
            "audioId": record.track_id,
            "musicId": record.track_id,
            "response": {"audioWavUrl": url},
        }
        if record.status == WavStatus.SUCCESS:
            return {"code": 200, "msg": "success", "data": data}
        message = record.error_message or "failed"
        return {"code": record.error_code or 500, "msg": message, "data": data}

    def retry_schedule(self, settings: Settings) -> tuple[float, ...]:
        return settings.callback_retry_suno


SUNO = Suno()
time = SUNO.time


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
    dither: Any = option("dither")
    preset: Any = option("preset")
    loudness: Any = option("loudness")

    def to_request(self) -> WavRequest:
        return WavRequest(
            dialect=SUNO.name,
            task_id=self.taskId or None,
            audio_id=self.audioId or None,
            callback_url=self.callBackUrl,
            options=options_of(self, FIELD_NAMES),
            names=FIELD_NAMES,
        )


def wav_record(record: WavRecord) -> dict[str, Any]:
    return {
        "taskId": record.id,
        "musicId": record.track_id,
        "musicIndex": record.track_position,
        "callbackUrl": record.callback_url,
        "createTime": time(record.created_at),
        "completeTime": time(record.completed_at),
        "response": {"audioWavUrl": record.wav_url},
        "successFlag": SUCCESS_FLAG[record.status],
        "errorCode": record.error_code,
        "errorMessage": record.error_message,
        "analysis": record.analysis,  # wavforge extension: what the conversion measured
    }


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

Time = Annotated[
    str,
    Field(pattern=r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$", examples=["2026-11-21 10:30:00"]),
]


class Answer(Shape, Generic[DataT]):
    """Every success: ``{"code": 200, "msg": "success", "data": ...}``."""

    code: Literal[200]
    msg: Literal["success"]
    data: DataT


class SunoExistingTask(Shape):
    taskId: str = Field(description="The live WAV task that already holds the track.")


class SunoError(Shape):
    """Every error; the HTTP status equals ``code`` unless the key's profile says otherwise."""

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


# The dialect's envelopes in the schema; set here because the models come after the class.
Suno.answer_model = Answer
Suno.error_model = SunoError
Suno.conflict_model = SunoConflict
