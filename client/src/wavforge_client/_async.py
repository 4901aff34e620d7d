"""``AsyncClient``: the API over ``httpx.AsyncClient``. Transport only — what to send and
how to read the answer are ``_protocol``'s, shared with ``Client``; the methods mirror
``Client``'s one for one."""

from __future__ import annotations

import os
from collections.abc import Iterable
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import anyio
import httpx

from wavforge_client import _files, _protocol
from wavforge_client._files import BytesCallback
from wavforge_client._models import (
    Account,
    ApiKey,
    Delivery,
    FileInput,
    IssuedKey,
    Ledger,
    ListedTrack,
    ListedWavTask,
    MusicTask,
    Track,
    Upload,
    WavTask,
    WebhookSecret,
)
from wavforge_client._protocol import Call, ProgressCallback, Request
from wavforge_client._transport import (
    DEFAULT_TIMEOUT,
    Endpoint,
    arguments,
    client_options,
    translated,
)

T = TypeVar("T")


class AsyncClient:
    """A wavforge server, both dialects, awaitable calls (asyncio or trio). ::

        async with AsyncClient.from_env() as wf:
            track = (await wf.import_files(["song.mp3"])).tracks[0]
            task = await wf.wait(await wf.convert(track), on_progress=print)
            await wf.download_wav(task, "out/")

    Errors are ``ClientError`` subclasses: ``ApiError`` (the server's code and message),
    ``ConnectionFailed``, ``UnexpectedResponse``, ``WaitTimeout``, ``WavUnavailable``,
    ``DownloadFailed``. A 430 (request rate) is retried after the server's ``Retry-After``,
    up to ``rate_limit_retries`` times, since the server did nothing with the request.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        rate_limit_retries: int = 5,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._endpoint = Endpoint.make(base_url, api_key)
        self._retries = rate_limit_retries
        self._http = httpx.AsyncClient(
            transport=transport, **client_options(self._endpoint, timeout)
        )

    @classmethod
    def from_env(
        cls,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        rate_limit_retries: int = 5,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> AsyncClient:
        """``WAVFORGE_URL`` (default ``http://127.0.0.1:8000``) and ``WAVFORGE_API_KEY``."""
        endpoint = Endpoint.from_env()
        return cls(
            endpoint.base_url,
            endpoint.key,
            timeout=timeout,
            rate_limit_retries=rate_limit_retries,
            transport=transport,
        )

    @property
    def base_url(self) -> str:
        return self._endpoint.base_url

    def __repr__(self) -> str:
        return f"AsyncClient(base_url={self.base_url!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # ---- Suno-style dialect (/api/v1)

    async def import_files(
        self,
        files: Iterable[FileInput],
        *,
        title: str | None = None,
        tags: str = "",
        prompt: str = "",
    ) -> MusicTask:
        """Upload files as one music task (one track each); if any is refused, none is kept."""
        uploads = [Upload.of(f) for f in files]
        return await self._run(
            _protocol.import_files(uploads, title=title, tags=tags, prompt=prompt)
        )

    async def import_urls(
        self,
        urls: Iterable[str],
        *,
        title: str | None = None,
        tags: str = "",
        prompt: str = "",
        idempotency_key: str | None = None,
    ) -> MusicTask:
        """Have the server fetch each URL and import it (one music task, one track each)."""
        call = _protocol.import_urls(
            urls, title=title, tags=tags, prompt=prompt, idempotency_key=idempotency_key
        )
        return await self._run(call)

    async def generate_wav(
        self,
        *,
        callback_url: str,
        task_id: str | None = None,
        audio_id: str | None = None,
        bit_depth: int | None = None,
        sample_format: str | None = None,
        sample_rate: int | None = None,
        dither: str | None = None,
        preset: str | None = None,
        loudness: bool | None = None,
        idempotency_key: str | None = None,
    ) -> str:
        """``POST /api/v1/wav/generate`` (a callback URL is required in this dialect); the
        new task's id."""
        options = _protocol.output_options(
            bit_depth, sample_format, sample_rate, dither, preset, loudness
        )
        call = _protocol.generate_wav(
            task_id=task_id,
            audio_id=audio_id,
            callback_url=callback_url,
            options=options,
            idempotency_key=idempotency_key,
        )
        return await self._run(call)

    async def wav_record(self, task_id: str) -> WavTask:
        """``GET /api/v1/wav/record-info``: the exact state and error code, no progress."""
        return await self._run(_protocol.wav_record(task_id))

    async def music_record(self, task_id: str) -> MusicTask:
        """``GET /api/v1/generate/record-info``: an imported music task and its tracks."""
        return await self._run(_protocol.music_record(task_id))

    async def credit(self) -> int:
        """The account's credit balance."""
        return await self._run(_protocol.credit())

    async def callbacks(self, task_id: str) -> tuple[Delivery, ...]:
        """A WAV task's callback deliveries and every attempt of each."""
        return await self._run(_protocol.callbacks(task_id))

    async def ledger(self, limit: int = 100) -> Ledger:
        """The balance and its newest ledger entries."""
        return await self._run(_protocol.ledger(limit))

    # ---- your account (/api/v1/account): any key, its own account only

    async def account(self) -> Account:
        """The account: balance, keys in use, usage, and the webhook secret its callbacks are
        signed with."""
        return await self._run(_protocol.account())

    async def api_keys(self) -> tuple[ApiKey, ...]:
        """The account's keys, revoked ones included, oldest first (prefixes, never keys)."""
        return await self._run(_protocol.keys())

    async def create_key(self, name: str, *, profile: str | None = None) -> IssuedKey:
        """Another key for the account; ``.key`` is shown this once. ``profile`` (``"kie"``,
        ...) numbers its errors as that vendor does; None: the account's profile."""
        return await self._run(_protocol.create_key(name, profile))

    async def revoke_key(self, key: str | ApiKey | IssuedKey) -> None:
        """Revoke one of the account's keys at once (this client's own key too); a key of
        another account, or one already revoked, is an ``ApiError`` 404."""
        await self._run(_protocol.revoke_key(_protocol.key_id_of(key)))

    async def reset_key(self, key: str | ApiKey | IssuedKey) -> IssuedKey:
        """Revoke one of the account's keys and issue its replacement (shown this once)."""
        return await self._run(_protocol.reset_key(_protocol.key_id_of(key)))

    async def rotate_webhook_secret(self) -> WebhookSecret:
        """A new webhook signing secret; the old one still signs until
        ``previous_valid_until`` (24 hours), so receivers can switch without a gap."""
        return await self._run(_protocol.rotate_webhook_secret())

    async def tracks(
        self, *, limit: int = 50, before: str | None = None, sha256: str | None = None
    ) -> tuple[ListedTrack, ...]:
        """The account's tracks, newest first: at most ``limit`` (1 to 200). To page back, pass
        as ``before`` the id of the last row of the previous page. ``sha256``: only tracks
        imported from a file with that SHA-256 (was this file uploaded before?)."""
        return await self._run(_protocol.tracks(limit, before, sha256))

    async def delete_track(self, track: str | Track) -> tuple[str, ...]:
        """Delete one of the account's tracks: its source and every WAV made from it (their
        links answer 410; the records and the ledger stay). The ids of those WAV tasks.
        ``ApiError`` 409 while a conversion of it has not finished."""
        track_id = track.id if isinstance(track, Track) else track
        return await self._run(_protocol.delete_track(track_id))

    async def wav_tasks(
        self, *, limit: int = 50, before: str | None = None
    ) -> tuple[ListedWavTask, ...]:
        """The account's WAV tasks, newest first, with progress and title; paged as ``tracks``."""
        return await self._run(_protocol.wav_tasks(limit, before))

    # ---- administration (/api/v1/admin): admin keys only, others get ``ApiError`` 403

    async def admin_accounts(self) -> tuple[Account, ...]:
        """Every account, oldest first, with balance and working keys (no webhook secrets)."""
        return await self._run(_protocol.admin_accounts())

    async def create_account(
        self, name: str, *, credits: int = 0, admin: bool = False, profile: str | None = None
    ) -> IssuedKey:
        """A new account and its first key (shown this once), in vendor ``profile``."""
        call = _protocol.create_account(name, credits=credits, admin=admin, profile=profile)
        return await self._run(call)

    async def grant_credits(self, account: str | Account, amount: int, *, note: str = "") -> int:
        """Grant credits (a negative ``amount`` takes them back, never below zero); the
        account's new balance."""
        call = _protocol.grant_credits(_protocol.account_id_of(account), amount, note=note)
        return await self._run(call)

    async def maintenance(self) -> bool:
        """Whether maintenance mode is on (submissions answer 455; reads still work)."""
        return await self._run(_protocol.maintenance())

    async def set_maintenance(self, enabled: bool) -> bool:
        """Switch maintenance mode on or off (every API process follows within a second)."""
        return await self._run(_protocol.set_maintenance(enabled))

    # ---- unified dialect (/api/generate)

    async def submit(
        self,
        *,
        task_id: str | None = None,
        audio_id: str | None = None,
        callback_url: str | None = None,
        bit_depth: int | None = None,
        sample_format: str | None = None,
        sample_rate: int | None = None,
        dither: str | None = None,
        preset: str | None = None,
        loudness: bool | None = None,
        idempotency_key: str | None = None,
    ) -> WavTask:
        """``POST /api/generate/submit`` with model ``convert-to-wav``; the callback is optional."""
        options = _protocol.output_options(
            bit_depth, sample_format, sample_rate, dither, preset, loudness
        )
        call = _protocol.submit(
            task_id=task_id,
            audio_id=audio_id,
            callback_url=callback_url,
            options=options,
            idempotency_key=idempotency_key,
        )
        return await self._run(call)

    async def status(self, task_id: str) -> WavTask | MusicTask:
        """``GET /api/generate/status/{id}``: a WAV task (with progress) or a music task."""
        return await self._run(_protocol.status(task_id))

    async def detail(self, task_id: str) -> WavTask | MusicTask:
        """``GET /api/generate/detail/music``: as ``status``."""
        return await self._run(_protocol.detail(task_id))

    # ---- high level

    async def convert(
        self,
        track: str | Track,
        *,
        bit_depth: int | None = None,
        sample_format: str | None = None,
        sample_rate: int | None = None,
        dither: str | None = None,
        preset: str | None = None,
        loudness: bool | None = None,
        callback_url: str | None = None,
        idempotency_key: str | None = None,
    ) -> str:
        """Start converting a track (a ``Track`` or its id); the WAV task's id."""
        submitted = await self.submit(
            audio_id=_protocol.track_id_of(track),
            callback_url=callback_url,
            bit_depth=bit_depth,
            sample_format=sample_format,
            sample_rate=sample_rate,
            dither=dither,
            preset=preset,
            loudness=loudness,
            idempotency_key=idempotency_key,
        )
        return submitted.id

    async def wait(
        self,
        task: str | WavTask,
        *,
        timeout: float | None = 600.0,
        on_progress: ProgressCallback | None = None,
    ) -> WavTask:
        """Poll until the task ends, succeeded or failed (check ``.status``); ``WaitTimeout``
        after ``timeout`` seconds. ``on_progress`` hears each change of status or progress."""
        waiter = _protocol.Waiter(_protocol.task_id_of(task), timeout, on_progress)
        while (delay := waiter.observe(await self._run(waiter.poll()))) is not None:
            await anyio.sleep(delay)
        return waiter.result(await self._run(waiter.confirm()))

    async def download_wav(
        self,
        task_or_url: str | WavTask,
        path: str | os.PathLike[str],
        *,
        overwrite: bool = False,
        on_bytes: BytesCallback | None = None,
    ) -> Path:
        """Stream a task's WAV (a task, its id, or the signed link) to ``path``, atomically;
        the file's path. A folder (one that exists, or a path ending in ``/``, made if need
        be) gets the server's file name inside it. An existing file is never replaced
        unless ``overwrite`` (else ``FileExistsError``, before anything is downloaded).
        ``on_bytes(received, length)`` hears each chunk (for a progress bar)."""
        if _protocol.is_link(task_or_url):
            url = str(task_or_url)
        else:
            found = (
                task_or_url
                if isinstance(task_or_url, WavTask)
                else await self.wav_record(task_or_url)
            )
            url = _protocol.wav_link(found)
        with translated(url):
            async with self._http.stream("GET", url) as response:
                if response.status_code != 200:
                    _protocol.unwrap(response.status_code, response.headers, await response.aread())
                disposition = response.headers.get("content-disposition")
                with _files.AtomicFile(
                    _files.target_path(path, url, disposition, overwrite=overwrite),
                    overwrite=overwrite,
                    expected=_files.expected_length(response.headers),
                    on_bytes=on_bytes,
                ) as out:
                    async for chunk in response.aiter_bytes(_files.CHUNK):
                        out.write(chunk)
                    return out.commit()

    # ---- transport

    async def _run(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            response = await self._send(call.request)
            status, headers = response.status_code, response.headers
            delay = _protocol.rate_limit_delay(status, headers, attempt, self._retries)
            if delay is None:
                return call.parse(status, headers, response.content)
            attempt += 1
            await anyio.sleep(delay)

    async def _send(self, request: Request) -> httpx.Response:
        with ExitStack() as files, translated(self.base_url):
            return await self._http.request(**arguments(request, self._endpoint, files))
