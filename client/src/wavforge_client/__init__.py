"""A typed client for a wavforge server: ``Client`` (blocking) and ``AsyncClient``.

Both speak both dialects — the Suno-style ``/api/v1`` and the unified ``/api/generate`` —
and add what every caller otherwise writes by hand: import files, convert a track, ``wait``
for it with progress, ``download_wav`` atomically; and manage the account (keys, webhook
secret, listings) and, with an admin key, the service. ::

    from wavforge_client import Client

    with Client("http://127.0.0.1:8000", api_key) as wf:
        music = wf.import_files(["song.mp3"])
        task = wf.wait(wf.convert(music.tracks[0]))
        if task.status.succeeded:
            wf.download_wav(task, "song.wav")

Only ``httpx`` is needed: nothing of the server (FastAPI, SQLAlchemy, PyAV) is imported.
"""

from wavforge_client._async import AsyncClient
from wavforge_client._errors import (
    ApiError,
    ClientError,
    ConnectionFailed,
    DownloadFailed,
    UnexpectedResponse,
    WaitTimeout,
    WavUnavailable,
)
from wavforge_client._files import BytesCallback
from wavforge_client._models import (
    Account,
    Analysis,
    ApiKey,
    Delivery,
    DeliveryAttempt,
    FileInput,
    IssuedKey,
    Ledger,
    LedgerEntry,
    ListedTrack,
    ListedWavTask,
    MusicTask,
    TaskError,
    Track,
    Upload,
    Usage,
    WavStatus,
    WavTask,
    WebhookSecret,
)
from wavforge_client._protocol import ProgressCallback
from wavforge_client._sync import Client
from wavforge_client._transport import DEFAULT_URL, KEY_VARIABLE, URL_VARIABLE
from wavforge_client._version import __version__

__all__ = [
    "DEFAULT_URL",
    "KEY_VARIABLE",
    "URL_VARIABLE",
    "Account",
    "Analysis",
    "ApiError",
    "ApiKey",
    "AsyncClient",
    "BytesCallback",
    "Client",
    "ClientError",
    "ConnectionFailed",
    "Delivery",
    "DeliveryAttempt",
    "DownloadFailed",
    "FileInput",
    "IssuedKey",
    "Ledger",
    "LedgerEntry",
    "ListedTrack",
    "ListedWavTask",
    "MusicTask",
    "ProgressCallback",
    "TaskError",
    "Track",
    "UnexpectedResponse",
    "Upload",
    "Usage",
    "WaitTimeout",
    "WavStatus",
    "WavTask",
    "WavUnavailable",
    "WebhookSecret",
    "__version__",
]
