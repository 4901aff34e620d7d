"""The API without I/O: what to send for each endpoint, and how to read what comes back.

``Client`` and ``AsyncClient`` only move bytes. Each endpoint is a function here that returns
a :class:`Call`: the request to send and the parser of its answer (envelope check, then the
``data`` into a model, or an :class:`ApiError`). Rules that need time but no socket — how
long to back off, when a wait ends, whether a 430 is worth retrying — are here too, as plain
objects the two transports drive. So the two clients cannot drift apart, and every rule can
be read without thinking about sync or async.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from wavforge_client import _wire
from wavforge_client._errors import (
    ApiError,
    ClientError,
    UnexpectedResponse,
    WaitTimeout,
    WavUnavailable,
)
from wavforge_client._models import (
    Account,
    ApiKey,
    Delivery,
    IssuedKey,
    Ledger,
    ListedTrack,
    ListedWavTask,
    MusicTask,
    Track,
    Upload,
    WavStatus,
    WavTask,
    WebhookSecret,
)

T = TypeVar("T")
ProgressCallback = Callable[[WavTask], object]

WAV_MODEL = "convert-to-wav"
RATE_LIMITED = 430  # per-key request rate; the request did nothing, so it is safe to send again
MAX_RETRY_AFTER = 30.0


@dataclass(frozen=True)
class Request:
    """One HTTP request, relative to the base URL. The transport adds the Authorization
    header, so no request object ever holds the key."""

    method: str
    path: str
    params: Mapping[str, str | int] | None = None
    json: Any = None
    uploads: tuple[Upload, ...] = ()
    form: Mapping[str, str] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Call(Generic[T]):
    """A request and the parser of its answer's ``data``."""

    request: Request
    read: Callable[[Any], T]

    def parse(self, status: int, headers: Mapping[str, str], body: bytes) -> T:
        """The typed result of an answer, or the ``ApiError`` its envelope carries."""
        data = unwrap(status, headers, body)
        try:
            return self.read(data)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise UnexpectedResponse(
                f"HTTP {status}: the answer lacks what the API promises ({error!r})", status
            ) from None


def unwrap(status: int, headers: Mapping[str, str], body: bytes) -> Any:
    """The ``data`` of a success envelope; an ``ApiError`` for an error envelope (either
    dialect's: Suno's ``msg``, the unified ``message``)."""
    try:
        envelope = json.loads(body)
    except ValueError:
        envelope = None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("code"), int):
        raise UnexpectedResponse(
            f"HTTP {status}: not a wavforge answer (is the URL right?)", status
        ) from None
    code = envelope["code"]
    if code == 200 and status == 200:
        return envelope.get("data")
    message = envelope.get("msg") or envelope.get("message") or f"HTTP {status}"
    raise ApiError(
        code if code != 200 else status,
        str(message),
        status,
        envelope.get("data"),
        retry_after(headers),
    )


def retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: wavforge sends seconds; let the caller use its own delay


def rate_limit_delay(
    status: int, headers: Mapping[str, str], attempt: int, retries: int
) -> float | None:
    """Seconds to wait before sending a request again that answered 430, or None to give up
    (or when there is nothing to retry). The server says how long in ``Retry-After``."""
    if status != RATE_LIMITED or attempt >= retries:
        return None
    asked = retry_after(headers)
    return min(MAX_RETRY_AFTER, asked if asked is not None else 0.5 * 2**attempt)


# ---- the Suno-style dialect: /api/v1/...


def import_files(
    uploads: Iterable[Upload], *, title: str | None, tags: str, prompt: str
) -> Call[MusicTask]:
    """Multipart upload; one music task with one track per file, or nothing if any is refused."""
    sent = tuple(uploads)
    if not sent:
        raise ValueError("import_files needs at least one file")
    form = _texts(title=title, tags=tags, prompt=prompt)
    request = Request("POST", "/api/v1/music/import", uploads=sent, form=form)
    return Call(request, _wire.imported)


def import_urls(
    urls: Iterable[str],
    *,
    title: str | None,
    tags: str,
    prompt: str,
    idempotency_key: str | None,
) -> Call[MusicTask]:
    """The server downloads each URL (public addresses only, unless the operator allows)."""
    body: dict[str, Any] = {"urls": list(urls), **_texts(title=title, tags=tags, prompt=prompt)}
    request = Request(
        "POST", "/api/v1/music/import", json=body, headers=_idempotency(idempotency_key)
    )
    return Call(request, _wire.imported)


def generate_wav(
    *,
    task_id: str | None,
    audio_id: str | None,
    callback_url: str,
    options: Mapping[str, Any],
    idempotency_key: str | None,
) -> Call[str]:
    body = {"taskId": task_id, "audioId": audio_id, "callBackUrl": callback_url}
    body |= {_camel(name): value for name, value in options.items()}
    request = Request(
        "POST", "/api/v1/wav/generate", json=_present(body), headers=_idempotency(idempotency_key)
    )
    return Call(request, _wire.generated)


def wav_record(task_id: str) -> Call[WavTask]:
    return Call(Request("GET", "/api/v1/wav/record-info", {"taskId": task_id}), _wire.suno_wav)


def music_record(task_id: str) -> Call[MusicTask]:
    request = Request("GET", "/api/v1/generate/record-info", {"taskId": task_id})
    return Call(request, _wire.suno_music)


def credit() -> Call[int]:
    return Call(Request("GET", "/api/v1/generate/credit"), _wire.credit)


def callbacks(task_id: str) -> Call[tuple[Delivery, ...]]:
    return Call(Request("GET", "/api/v1/wav/callbacks", {"taskId": task_id}), _wire.deliveries)


def ledger(limit: int) -> Call[Ledger]:
    return Call(Request("GET", "/api/v1/account/ledger", {"limit": limit}), _wire.ledger)


# ---- the account: /api/v1/account/... (any key, its own account only)


def account() -> Call[Account]:
    return Call(Request("GET", "/api/v1/account"), _wire.account)


def keys() -> Call[tuple[ApiKey, ...]]:
    return Call(Request("GET", "/api/v1/account/keys"), _wire.keys)


def create_key(name: str, profile: str | None = None) -> Call[IssuedKey]:
    body = _present({"name": name, "profile": profile})
    return Call(Request("POST", "/api/v1/account/keys", json=body), _wire.issued)


def revoke_key(key_id: str) -> Call[None]:
    return Call(Request("POST", f"/api/v1/account/keys/{_segment(key_id)}/revoke"), _wire.revoked)


def reset_key(key_id: str) -> Call[IssuedKey]:
    return Call(Request("POST", f"/api/v1/account/keys/{_segment(key_id)}/reset"), _wire.issued)


def rotate_webhook_secret() -> Call[WebhookSecret]:
    return Call(Request("POST", "/api/v1/account/webhook-secret/rotate"), _wire.rotated)


def tracks(
    limit: int, before: str | None, sha256: str | None = None
) -> Call[tuple[ListedTrack, ...]]:
    params = _page(limit, before) | ({"sha256": sha256} if sha256 else {})
    return Call(Request("GET", "/api/v1/account/tracks", params), _wire.tracks)


def delete_track(track_id: str) -> Call[tuple[str, ...]]:
    request = Request("DELETE", f"/api/v1/account/tracks/{_segment(track_id)}")
    return Call(request, _wire.deleted_track)


def wav_tasks(limit: int, before: str | None) -> Call[tuple[ListedWavTask, ...]]:
    request = Request("GET", "/api/v1/account/wav-tasks", _page(limit, before))
    return Call(request, _wire.wav_tasks)


def _page(limit: int, before: str | None) -> dict[str, str | int]:
    """A listing's page: the newest ``limit`` rows after ``before``, the id of the last row of
    the previous page (an id, not a time: rows made together share a time)."""
    params: dict[str, str | int] = {"limit": limit}
    if before is not None:
        params["before"] = before
    return params


# ---- administration: /api/v1/admin/... (admin keys only; others get 403)


def admin_accounts() -> Call[tuple[Account, ...]]:
    return Call(Request("GET", "/api/v1/admin/accounts"), _wire.accounts)


def create_account(
    name: str, *, credits: int, admin: bool, profile: str | None = None
) -> Call[IssuedKey]:
    body = _present({"name": name, "credits": credits, "admin": admin, "profile": profile})
    return Call(Request("POST", "/api/v1/admin/accounts", json=body), _wire.issued)


def grant_credits(account_id: str, amount: int, *, note: str) -> Call[int]:
    path = f"/api/v1/admin/accounts/{_segment(account_id)}/credits"
    return Call(Request("POST", path, json={"amount": amount, "note": note}), _wire.balance)


def maintenance() -> Call[bool]:
    return Call(Request("GET", "/api/v1/admin/maintenance"), _wire.switch)


def set_maintenance(enabled: bool) -> Call[bool]:
    request = Request("PUT", "/api/v1/admin/maintenance", json={"enabled": enabled})
    return Call(request, _wire.switch)


# ---- the unified dialect: /api/generate/...


def submit(
    *,
    task_id: str | None,
    audio_id: str | None,
    callback_url: str | None,
    options: Mapping[str, Any],
    idempotency_key: str | None,
) -> Call[WavTask]:
    given = _present({"task_id": task_id, "audio_id": audio_id, **options})
    body = _present({"model": WAV_MODEL, "callback_url": callback_url, "input": given})
    request = Request(
        "POST", "/api/generate/submit", json=body, headers=_idempotency(idempotency_key)
    )
    return Call(request, _wire.unified_wav)


def status(task_id: str) -> Call[WavTask | MusicTask]:
    return Call(Request("GET", f"/api/generate/status/{_segment(task_id)}"), _wire.unified_any)


def detail(task_id: str) -> Call[WavTask | MusicTask]:
    request = Request("GET", "/api/generate/detail/music", {"task_id": task_id})
    return Call(request, _wire.unified_any)


def wav_status(task_id: str) -> Call[WavTask]:
    """The unified status of a task that must be a WAV task (``wait`` polls this)."""

    def read(data: Any) -> WavTask:
        if not _wire.is_wav(data):
            raise ClientError(f"{task_id} is a music task, not a WAV task")
        return _wire.unified_wav(data)

    return Call(status(task_id).request, read)


def output_options(
    bit_depth: int | None,
    sample_format: str | None,
    sample_rate: int | None,
    dither: str | None = None,
    preset: str | None = None,
    loudness: bool | None = None,
) -> dict[str, Any]:
    """The output options (CONTRACT §9) that were given, by their unified names; the server
    validates them (one rule for every front end) and answers 400 naming a bad one."""
    given = {
        "bit_depth": bit_depth,
        "sample_format": sample_format,
        "sample_rate": sample_rate,
        "dither": dither,
        "preset": preset,
        "loudness": loudness,
    }
    return _present(given)


def _segment(value: str) -> str:
    """An id as one path segment: a ``/`` or ``?`` in it cannot reach another endpoint."""
    return quote(value, safe="")


def _present(values: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


def _texts(**values: str | None) -> dict[str, str]:
    return {name: value for name, value in values.items() if value}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _idempotency(key: str | None) -> dict[str, str]:
    return {"Idempotency-Key": key} if key else {}


# ---- the high-level helpers' arguments


def task_id_of(task: str | WavTask) -> str:
    return task if isinstance(task, str) else task.id


def track_id_of(track: str | Track) -> str:
    return track if isinstance(track, str) else track.id


def key_id_of(key: str | ApiKey | IssuedKey) -> str:
    return key if isinstance(key, str) else key.id


def account_id_of(account: str | Account) -> str:
    return account if isinstance(account, str) else account.id


def is_link(value: str | WavTask) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://"))


def wav_link(task: WavTask) -> str:
    """The WAV's signed link, or ``WavUnavailable`` saying why there is none."""
    if task.wav_url is None:
        raise WavUnavailable(task)
    return task.wav_url


# ---- waiting for a task


@dataclass
class Backoff:
    """Poll intervals: quick at first (short files finish in well under a second), then
    slower, capped near the worker's progress cadence (it stores progress every ~2 s)."""

    first: float = 0.1
    factor: float = 1.6
    cap: float = 2.0
    _next: float = field(init=False, default=0.0)

    def __call__(self) -> float:
        delay = self._next or self.first
        self._next = min(self.cap, delay * self.factor)
        return delay


@dataclass
class Waiter:
    """``wait``'s rules; the clients drive it: ``poll`` → ``observe`` (sleep what it says)
    until it says None → ``confirm`` → ``result``.

    Progress exists only in the unified status, and the exact end state (``CALLBACK_EXCEPTION``,
    the error code) only in the Suno record, so it polls the first and reads the second once,
    at the end. ``on_progress`` hears every change of status or progress, the last included.
    """

    task_id: str
    timeout: float | None
    on_progress: ProgressCallback | None = None
    backoff: Backoff = field(default_factory=Backoff)
    clock: Callable[[], float] = time.monotonic
    polled: WavTask | None = field(init=False, default=None)
    _told: tuple[WavStatus, int | None] | None = field(init=False, default=None)
    _started: float = field(init=False)

    def __post_init__(self) -> None:
        self._started = self.clock()

    def poll(self) -> Call[WavTask]:
        return wav_status(self.task_id)

    def observe(self, task: WavTask) -> float | None:
        """Record a poll's answer; the seconds to sleep before the next poll, or None when
        the task has ended. Raises ``WaitTimeout`` when the time is up."""
        self.polled = task
        if task.status.finished:
            return None
        self._tell(task)
        if self.timeout is None:
            return self.backoff()
        remaining = self._started + self.timeout - self.clock()
        if remaining <= 0:
            raise WaitTimeout(task, self.timeout)
        return min(self.backoff(), remaining)

    def confirm(self) -> Call[WavTask]:
        return wav_record(self.task_id)

    def result(self, record: WavTask) -> WavTask:
        """The Suno record, with the progress the unified status reported."""
        polled = self.polled.progress if self.polled else None
        progress = 100 if record.status.succeeded else polled
        final = replace(record, progress=progress)
        self._tell(final)
        return final

    def _tell(self, task: WavTask) -> None:
        state = (task.status, task.progress)
        if state != self._told:
            self._told = state
            if self.on_progress is not None:
                self.on_progress(task)
