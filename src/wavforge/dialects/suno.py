"""The Suno-style dialect (``/api/v1/...``): ``{code, msg, data}``, camelCase, ``successFlag``."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from wavforge.core.accounts import RotatedSecret
from wavforge.core.delivery_log import DeliveryRecord
from wavforge.core.records import MusicRecord, TrackRecord, WavRecord
from wavforge.core.states import Dialect, WavStatus
from wavforge.core.wav_tasks import WavRequest
from wavforge.errors import Conflict, WavforgeError

MODEL_NAME = "wavforge-import"
# Suno has no RUNNING flag: a task is PENDING until it ends.
SUCCESS_FLAG = {WavStatus.RUNNING: WavStatus.PENDING}


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
    bitDepth: Any = None
    sampleFormat: Any = None
    sampleRate: Any = None

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
