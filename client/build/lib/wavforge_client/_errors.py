"""Everything the client raises on purpose. ::

    ClientError                 base: catch this to catch them all
    ├── ApiError                the server answered with an error envelope (code, msg, status)
    ├── ConnectionFailed        no answer: the server could not be reached, or the connection broke
    ├── UnexpectedResponse      an answer that is not wavforge's (a wrong URL, a proxy's error page)
    ├── WaitTimeout             ``wait`` gave up before the task ended; ``task`` is the last state
    ├── WavUnavailable          ``download_wav`` on a task that has no WAV (not yet, or any more)
    └── DownloadFailed          the download ended before the whole file arrived

httpx's own errors never leave the client: they are translated where they enter
(``_transport.py``). No message or repr holds the API key: the key lives only in the
``Authorization`` header of the request being sent, and no request is kept on an error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wavforge_client._models import WavTask

__all__ = [
    "ApiError",
    "ClientError",
    "ConnectionFailed",
    "DownloadFailed",
    "UnexpectedResponse",
    "WaitTimeout",
    "WavUnavailable",
]


class ClientError(Exception):
    """Base of the client's errors; the message is meant for people."""


class ApiError(ClientError):
    """The server refused the request; ``code`` is the contract's code (docs/api.md).

    ``code`` and ``status`` are equal for wavforge (the HTTP status mirrors the code) but both
    are kept, because a proxy in between may answer with a status of its own. ``data`` is the
    envelope's data: for 409, the id of the task that already holds the track.
    ``retry_after`` is the server's ``Retry-After`` in seconds (430), when it sent one.
    """

    def __init__(
        self, code: int, msg: str, status: int, data: Any = None, retry_after: float | None = None
    ) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.status = status
        self.data = data
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"ApiError(code={self.code}, msg={self.msg!r}, status={self.status})"

    def __reduce__(self) -> tuple[Any, ...]:  # picklable, e.g. across process pools
        return (ApiError, (self.code, self.msg, self.status, self.data, self.retry_after))

    @property
    def existing_task_id(self) -> str | None:
        """For 409: the task that already holds the track (either dialect's spelling)."""
        if self.code != 409 or not isinstance(self.data, dict):
            return None
        found = self.data.get("taskId") or self.data.get("task_id")
        return str(found) if found else None


class ConnectionFailed(ClientError):
    """The server could not be reached, or the connection failed before an answer came."""


class UnexpectedResponse(ClientError):
    """An answer that is not a wavforge envelope, or one without the fields the API promises."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status

    def __reduce__(self) -> tuple[Any, ...]:
        return (UnexpectedResponse, (str(self), self.status))


class WaitTimeout(ClientError):
    """``wait`` ran out of time; the task goes on on the server and may be waited on again."""

    def __init__(self, task: WavTask, timeout: float) -> None:
        progress = "" if task.progress is None else f", {task.progress}%"
        super().__init__(
            f"task {task.id} did not end within {timeout:g} s ({task.status.value}{progress})"
        )
        self.task = task
        self.timeout = timeout

    def __reduce__(self) -> tuple[Any, ...]:
        return (WaitTimeout, (self.task, self.timeout))


class WavUnavailable(ClientError):
    """The task has no WAV to download: it has not finished, it failed, or its file expired."""

    def __init__(self, task: WavTask) -> None:
        why = task.error.message if task.error else task.status.value
        super().__init__(f"task {task.id} has no WAV file: {why}")
        self.task = task

    def __reduce__(self) -> tuple[Any, ...]:
        return (WavUnavailable, (self.task,))


class DownloadFailed(ClientError):
    """The file arrived incomplete; nothing was left at the target path."""
