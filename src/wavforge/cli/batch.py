"""``wavforge import`` and ``convert`` as a batch: each item on its own, a few at a time.

One item's failure never stops another: every file is imported by its own request (an
import of several files is all-or-nothing on the server), and every item ends as an
:class:`Outcome`, success or not. What is shown while it runs is a :class:`Reporter`'s
business; this module only says what is happening.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from wavforge_client import AsyncClient, ClientError, Track, WavTask

T = TypeVar("T")
MUSIC_TASK_ID = re.compile(r"[0-9a-f]{32}")  # a music task's id; a track's is a dashed UUID
STAGES = {"PENDING": "queued", "RUNNING": "converting"}
SKIPPED = "SKIPPED"  # an outcome's status when its WAV was already in the output folder
DELETED = "DELETED"


@dataclass(frozen=True)
class Item:
    """One thing to convert: a local file (imported first), a track, or a music task's first
    track. ``label`` is what the user typed, and what messages name."""

    label: str
    path: Path | None = None
    audio_id: str | None = None
    task_id: str | None = None

    @classmethod
    def parse(cls, text: str) -> Item:
        """An existing file is a file; a name with a slash or a dot that is not one is a
        mistake (``ValueError``: ids have neither); anything else is an id (32 hex: a music
        task's, else a track's)."""
        path = Path(text)
        if path.is_file():
            return cls(text, path=path)
        if path.exists():
            raise ValueError(f"{text}: not a regular file")
        if "/" in text or "." in text or not text:
            raise ValueError(f"{text}: no such file")
        if MUSIC_TASK_ID.fullmatch(text):
            return cls(text, task_id=text)
        return cls(text, audio_id=text)


@dataclass(frozen=True)
class Job:
    """What every conversion of the batch asks for, and where the WAVs go."""

    out: Path
    bit_depth: int | None = None
    sample_format: str | None = None
    sample_rate: int | None = None
    dither: str | None = None
    preset: str | None = None
    loudness: bool | None = None
    timeout: float | None = None
    force: bool = False  # replace WAVs already in ``out`` (else such items are skipped)

    def options(self) -> dict[str, Any]:
        given = {
            "bit_depth": self.bit_depth,
            "sample_format": self.sample_format,
            "sample_rate": self.sample_rate,
            "dither": self.dither,
            "preset": self.preset,
            "loudness": self.loudness or None,
        }
        return {name: value for name, value in given.items() if value is not None}


@dataclass
class Outcome:
    """How one item ended; ``unreachable`` marks a failure to talk to the server at all
    (no connection, or the key refused), which the command reports with its own exit code."""

    item: str
    ok: bool = False
    file: str | None = None
    track_id: str | None = None
    task_id: str | None = None
    status: str | None = None
    output: str | None = None
    title: str | None = None
    duration: float | None = None
    analysis: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    unreachable: bool = field(default=False, repr=False)

    def fail(self, error: ClientError | OSError) -> Outcome:
        """Record why; an ``OSError`` is this machine's (a full disk, a file not readable)."""
        from wavforge_client import ApiError, ConnectionFailed, UnexpectedResponse

        if isinstance(error, ApiError):
            self.error = {"code": error.code, "message": error.msg}
        elif isinstance(error, OSError):
            self.error = {"code": None, "message": f"{error.strerror}: {error.filename}"}
        else:
            self.error = {"code": None, "message": str(error)}
        self.ok = False
        self.unreachable = isinstance(error, ConnectionFailed | UnexpectedResponse) or (
            isinstance(error, ApiError) and error.code == 401
        )
        return self

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        del data["unreachable"]
        return data


class Reporter(Protocol):
    """Hears what each item (by its index) is doing; the command draws it, or not."""

    def stage(self, index: int, text: str) -> None: ...

    def progress(self, index: int, percent: int) -> None: ...

    def transferred(self, index: int, done: int, total: int | None) -> None: ...

    def finished(self, index: int, outcome: Outcome) -> None: ...


class Names:
    """Output file names, unique within the run: ``song.wav``, then ``song-2.wav``."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self._taken: set[str] = set()

    def claim(self, stem: str) -> Path:
        stem = re.sub(r"[^\w.\- ]+", "_", stem).strip(" .") or "track"
        name, number = f"{stem}.wav", 1
        while name.lower() in self._taken:
            number += 1
            name = f"{stem}-{number}.wav"
        self._taken.add(name.lower())
        return self.out / name


def link_stem(url: str) -> str:
    """The stem of the file name in a WAV link (the server names it after the track)."""
    return Path(unquote(urlsplit(url).path.rsplit("/", 1)[-1])).stem


async def bounded(work: Sequence[Callable[[], Awaitable[T]]], parallel: int) -> list[T]:
    """Run every piece of work, at most ``parallel`` at once, results in order."""
    gate = asyncio.Semaphore(parallel)

    async def one(run: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await run()

    return list(await asyncio.gather(*(one(run) for run in work)))


async def import_one(
    wf: AsyncClient, path: Path, tags: str, prompt: str, title: str | None = None
) -> Outcome:
    from wavforge_client import ClientError

    outcome = Outcome(str(path), file=str(path))
    try:
        music = await wf.import_files([path], title=title, tags=tags, prompt=prompt)
    except (ClientError, OSError) as error:
        return outcome.fail(error)
    track = music.tracks[0]
    outcome.ok, outcome.task_id, outcome.track_id = True, music.id, track.id
    outcome.title, outcome.duration = track.title, track.duration
    return outcome


@dataclass
class Conversion:
    """One item through import, submission, the wait, and the download."""

    wf: AsyncClient
    job: Job
    names: Names
    reporter: Reporter
    index: int
    item: Item
    target: Path | None = None  # claimed up front for files, so names follow the order given

    async def run(self) -> Outcome:
        from wavforge_client import ClientError

        outcome = Outcome(self.item.label, file=str(self.item.path) if self.item.path else None)
        try:
            await self._steps(outcome)
        except (ClientError, OSError) as error:
            outcome.fail(error)
        self.reporter.finished(self.index, outcome)
        return outcome

    async def _steps(self, outcome: Outcome) -> None:
        if self.target is not None and self.target.exists() and not self.job.force:
            self._skip(outcome, self.target)  # converted by an earlier run: no upload, no charge
            return
        outcome.track_id = await self._track(outcome)
        self.reporter.stage(self.index, "queued")
        outcome.task_id, reused = await self._submit(outcome.track_id)
        task = await self.wf.wait(
            outcome.task_id, timeout=self.job.timeout, on_progress=self._progress
        )
        outcome.status = task.status.value
        if not task.status.succeeded:
            why = task.error.message if task.error else task.status.value
            code = task.error.code if task.error else None
            outcome.error = {"code": code, "message": why}
            return
        self._check_format(task, reused)
        self.reporter.stage(self.index, "downloading")
        target = self.target or self.names.claim(link_stem(task.wav_url or "") or task.id)
        if target.exists() and not self.job.force:
            self._skip(outcome, target)
            return
        downloaded = await self.wf.download_wav(
            task,
            target,
            overwrite=self.job.force,
            on_bytes=lambda done, total: self.reporter.transferred(self.index, done, total),
        )
        outcome.output = str(downloaded)
        outcome.analysis = dataclasses.asdict(task.analysis) if task.analysis else None
        outcome.ok = True

    def _skip(self, outcome: Outcome, target: Path) -> None:
        """The WAV is there from an earlier run; ``--force`` converts and replaces it."""
        self.reporter.stage(self.index, "already there")
        outcome.ok, outcome.status, outcome.output = True, SKIPPED, str(target)

    async def _track(self, outcome: Outcome) -> str:
        item = self.item
        if item.path is not None:
            return await self._upload(item.path, outcome)
        if item.task_id is not None:
            return (await self.wf.music_record(item.task_id)).tracks[0].id
        assert item.audio_id is not None
        return item.audio_id

    async def _upload(self, path: Path, outcome: Outcome) -> str:
        """The track for a local file: one the account already has from the same bytes (no
        second upload), else a new import."""
        digest = await asyncio.to_thread(_sha256_of, path)
        known = await self.wf.tracks(limit=1, sha256=digest)
        track: Track
        if known:
            self.reporter.stage(self.index, "uploaded before")
            track = known[0]
        else:
            self.reporter.stage(self.index, "uploading")
            track = (await self.wf.import_files([path])).tracks[0]
        outcome.title, outcome.duration = track.title, track.duration
        return track.id

    async def _submit(self, track_id: str) -> tuple[str, bool]:
        """The new task's id; or, when the track has a live WAV in the format asked for, that
        task's (409)."""
        from wavforge_client import ApiError

        try:
            return await self.wf.convert(track_id, **self.job.options()), False
        except ApiError as error:
            existing = error.existing_task_id
            if existing is None:
                raise
            self.reporter.stage(self.index, "already converted")
            return existing, True

    def _check_format(self, task: WavTask, reused: bool) -> None:
        """A reused WAV must be in the format asked for. A 409 names one in the same format,
        except from a server of an earlier version, which held a track in one format only."""
        from wavforge_client import ClientError

        facts = task.analysis
        if not reused or facts is None:
            return
        wanted = self.job.options()
        made = {
            "bit_depth": facts.output_bit_depth,
            "sample_format": facts.output_sample_format,
            "sample_rate": facts.output_sample_rate,
        }
        if any(made[name] != value for name, value in wanted.items()):
            raise ClientError(
                f"the track already has a WAV in another format (task {task.id}); "
                "it can be converted again once that file expires"
            )

    def _progress(self, task: WavTask) -> None:
        self.reporter.stage(self.index, STAGES.get(task.status.value, task.status.value.lower()))
        if task.progress is not None:
            self.reporter.progress(self.index, task.progress)


async def convert_all(
    wf: AsyncClient, items: Sequence[Item], job: Job, reporter: Reporter, parallel: int
) -> list[Outcome]:
    names = Names(job.out)
    conversions = [
        Conversion(wf, job, names, reporter, index, item) for index, item in enumerate(items)
    ]
    for conversion in conversions:  # files first, in the order given: their names are known
        if conversion.item.path is not None:
            conversion.target = names.claim(conversion.item.path.stem)
    return await bounded([c.run for c in conversions], parallel)


def _sha256_of(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


async def delete_all(wf: AsyncClient, track_ids: Sequence[str]) -> list[Outcome]:
    """Delete each track on its own; one that cannot be deleted does not stop the others."""
    from wavforge_client import ClientError

    outcomes = []
    for track_id in track_ids:
        outcome = Outcome(track_id, track_id=track_id)
        try:
            await wf.delete_track(track_id)
        except ClientError as error:
            outcome.fail(error)
        else:
            outcome.ok, outcome.status = True, DELETED
        outcomes.append(outcome)
    return outcomes
