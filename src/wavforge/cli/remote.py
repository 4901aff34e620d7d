"""Commands that use a running server through the Python client: ``import`` and ``convert``.

Exit codes: 0 every item succeeded; 1 an item failed (each failure is named on stderr and in
``--json``); 2 wrong arguments; 3 the server could not be reached or refused the key. The
key comes from ``--key`` or ``WAVFORGE_API_KEY`` and is never printed. Progress goes to
stderr (bars only on a terminal); results to stdout, as a table or, with ``--json``, one
JSON document and nothing else.
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from wavforge.cli.base import (
    EXIT_FAILED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    DitherOption,
    PresetOption,
    app,
    console,
    fail,
)

if TYPE_CHECKING:  # imported where used: httpx and rich are slow to import
    from rich.progress import Progress, TaskID

    from wavforge.cli.batch import Item, Outcome
    from wavforge_client import AsyncClient

DEFAULT_URL = "http://127.0.0.1:8000"  # as wavforge_client's, without importing httpx here
BIT_DEPTHS = (16, 24, 32)

UrlOption = Annotated[
    str, typer.Option("--url", envvar="WAVFORGE_URL", help="Base URL of the wavforge server.")
]
KeyOption = Annotated[
    str,
    typer.Option(
        "--key",
        envvar="WAVFORGE_API_KEY",
        show_default=False,
        help="API key; prefer the variable (other users can read arguments in `ps`).",
    ),
]
ParallelOption = Annotated[
    int, typer.Option("--parallel", min=1, max=32, help="Items in flight at once.")
]
JsonList = Annotated[
    bool, typer.Option("--json", help="Print one JSON list of per-item results, no bars.")
]


@app.command("import")
def import_(
    files: Annotated[
        list[Path],
        typer.Argument(help="Audio files.", exists=True, dir_okay=False, metavar="FILE"),
    ],
    key: KeyOption,
    url: UrlOption = DEFAULT_URL,
    title: Annotated[
        str | None,
        typer.Option(help="Title of the track (default: the file's tag, else its name)."),
    ] = None,
    tags: Annotated[str, typer.Option(help="Tags for every track.")] = "",
    prompt: Annotated[str, typer.Option(help="Prompt text for every track.")] = "",
    parallel: ParallelOption = 4,
    as_json: JsonList = False,
) -> None:
    """Upload audio files to a server as tracks (one import each); print their track ids."""
    from wavforge.cli import batch

    if title is not None and len(files) > 1:
        raise typer.BadParameter("one title names one file", param_hint="--title")

    def work(wf: AsyncClient) -> Awaitable[list[Outcome]]:
        uploads = [
            functools.partial(batch.import_one, wf, path, tags, prompt, title) for path in files
        ]
        return batch.bounded(uploads, parallel)

    outcomes = _session(url, key, work)
    for outcome in outcomes:
        _report_failure(outcome)
    if as_json:
        fields = ("item", "ok", "file", "task_id", "track_id", "title", "duration", "error")
        print(json.dumps([{k: o.to_json()[k] for k in fields} for o in outcomes]))
    else:
        _import_table(outcomes)
    _exit(outcomes)


@app.command("convert")
def convert(
    key: KeyOption,
    items: Annotated[
        list[str] | None,
        typer.Argument(
            help="Local audio files (imported first) or track ids.",
            metavar="ITEM",
            show_default=False,
        ),
    ] = None,
    task_ids: Annotated[
        list[str] | None,
        typer.Option("--task-id", help="A music task: its first track. Repeatable."),
    ] = None,
    audio_ids: Annotated[
        list[str] | None, typer.Option("--audio-id", help="A track id. Repeatable.")
    ] = None,
    out: Annotated[Path, typer.Option(help="Directory for the WAV files.")] = Path("."),
    bit_depth: Annotated[
        int | None, typer.Option("--bit-depth", help="16, 24 or 32 (default: as the source).")
    ] = None,
    as_float: Annotated[bool, typer.Option("--float", help="32-bit float samples.")] = False,
    sample_rate: Annotated[
        int | None,
        typer.Option("--sample-rate", min=8000, max=192000, help="Resample to this rate in Hz."),
    ] = None,
    dither: DitherOption = None,
    preset: PresetOption = None,
    loudness: Annotated[
        bool,
        typer.Option(
            "--loudness", help="Measure loudness and true peak too (several times the work)."
        ),
    ] = False,
    timeout: Annotated[
        float, typer.Option(min=1, help="Seconds to wait for each conversion.")
    ] = 3600,
    url: UrlOption = DEFAULT_URL,
    parallel: ParallelOption = 4,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Convert and replace WAVs already in --out (else they are skipped)."
        ),
    ] = False,
    as_json: JsonList = False,
) -> None:
    """Convert files or tracks on a server and download the WAVs, with progress bars. A file
    whose WAV is already in --out is skipped (no upload, no charge) unless --force."""
    from wavforge.cli import batch

    chosen = _items(items or [], task_ids or [], audio_ids or [])
    if bit_depth is not None and bit_depth not in BIT_DEPTHS:
        raise typer.BadParameter("must be 16, 24 or 32", param_hint="--bit-depth")
    if as_float and bit_depth not in (None, 32):
        raise typer.BadParameter("--float needs --bit-depth 32 (or none)", param_hint="--float")
    job = batch.Job(
        out=_out_dir(out),
        bit_depth=bit_depth,
        sample_format="float" if as_float else None,
        sample_rate=sample_rate,
        dither=dither,
        preset=preset,
        loudness=loudness,
        timeout=timeout,
        force=force,
    )
    with _reporter([item.label for item in chosen], quiet=as_json) as reporter:
        outcomes = _session(
            url, key, lambda wf: batch.convert_all(wf, chosen, job, reporter, parallel)
        )
    if as_json:
        print(json.dumps([outcome.to_json() for outcome in outcomes]))
    else:
        _conversion_table(outcomes)
    _exit(outcomes)


tracks_app = typer.Typer(help="Manage the account's tracks on a server.", no_args_is_help=True)
app.add_typer(tracks_app, name="tracks")


@tracks_app.command("delete")
def tracks_delete(
    key: KeyOption,
    track_ids: Annotated[
        list[str], typer.Argument(help="Track ids (audioId).", metavar="TRACK_ID")
    ],
    url: UrlOption = DEFAULT_URL,
    as_json: JsonList = False,
) -> None:
    """Delete tracks: each one's source file and every WAV made from it (their links answer
    410). The records and the ledger stay. A track still converting is refused (409)."""
    from wavforge.cli import batch

    outcomes = _session(url, key, lambda wf: batch.delete_all(wf, track_ids))
    if as_json:
        print(json.dumps([outcome.to_json() for outcome in outcomes]))
    else:
        for outcome in outcomes:
            if outcome.ok:
                console().print(f"deleted {_escape(outcome.item)}")
            else:
                why = (outcome.error or {}).get("message", "")
                console(stderr=True).print(f"{_escape(outcome.item)}: {_escape(why)}")
    _exit(outcomes)


def _items(texts: Sequence[str], task_ids: Sequence[str], audio_ids: Sequence[str]) -> list[Item]:
    from wavforge.cli.batch import Item

    chosen = [Item(t, task_id=t) for t in task_ids] + [Item(a, audio_id=a) for a in audio_ids]
    try:
        chosen += [Item.parse(text) for text in texts]
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="ITEM") from None
    if not chosen:
        raise typer.BadParameter("name at least one file or track", param_hint="ITEM")
    return chosen


def _out_dir(out: Path) -> Path:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise typer.BadParameter(f"{out}: {error.strerror}", param_hint="--out") from None
    return out


def _session(
    url: str, key: str, work: Callable[[AsyncClient], Awaitable[list[Outcome]]]
) -> list[Outcome]:
    """Run ``work`` with a client, after one request that proves the server answers and
    accepts the key (so a typo fails at once, not once per item)."""
    import asyncio

    from wavforge_client import ApiError, AsyncClient, ConnectionFailed, UnexpectedResponse

    try:
        client = AsyncClient(url, key)
    except ValueError as error:  # the URL or key is malformed; the message holds no key
        fail(str(error), code=EXIT_USAGE)

    async def run() -> list[Outcome]:
        async with client as wf:
            await wf.credit()
            return await work(wf)

    try:
        return asyncio.run(run())
    except (ConnectionFailed, UnexpectedResponse) as error:
        fail(_escape(str(error)), code=EXIT_UNREACHABLE)
    except ApiError as error:
        if error.code == 401:
            fail(f"{url} refused the API key: {_escape(error.msg)}", code=EXIT_UNREACHABLE)
        fail(_escape(str(error)))


def _exit(outcomes: Sequence[Outcome]) -> None:
    if any(outcome.unreachable for outcome in outcomes):
        raise typer.Exit(EXIT_UNREACHABLE)
    if not all(outcome.ok for outcome in outcomes):
        raise typer.Exit(EXIT_FAILED)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _report_failure(outcome: Outcome) -> None:
    """``error: <item>: <why>``; the server's message often starts with the file's name."""
    if outcome.ok or outcome.error is None:
        return
    why = str(outcome.error["message"])
    why = why.removeprefix(f"{Path(outcome.item).name}: ")
    message = _escape(f"{outcome.item}: {why}")
    console(stderr=True).print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)


class _Bars:
    """Progress on stderr: a bar per item, fed by the task's progress, and one for them all.
    Drawn only on a terminal; failures are printed as they happen, either way."""

    def __init__(self, progress: Progress | None, labels: Sequence[str]) -> None:
        self._progress = progress
        self._done = [0] * len(labels)
        self._bars: list[TaskID] = []
        self._transfer_start: dict[int, float] = {}
        if progress is not None:
            self._all = progress.add_task("all", total=100 * len(labels), stage="")
            self._bars = [progress.add_task(_short(x), total=100, stage="") for x in labels]

    def stage(self, index: int, text: str) -> None:
        if self._progress is not None:
            self._progress.update(self._bars[index], stage=text)

    def progress(self, index: int, percent: int) -> None:
        self._done[index] = percent
        if self._progress is not None:
            self._progress.update(self._bars[index], completed=percent)
            self._progress.update(self._all, completed=sum(self._done))

    def transferred(self, index: int, done: int, total: int | None) -> None:
        """Bytes, speed and time left of a download, in the item's stage column."""
        if self._progress is None:
            return
        started = self._transfer_start.setdefault(index, time.monotonic())
        self._progress.update(self._bars[index], stage=_transfer_text(done, total, started))

    def finished(self, index: int, outcome: Outcome) -> None:
        _report_failure(outcome)
        self.progress(index, 100 if outcome.ok else self._done[index])
        self._done[index] = 100  # the item counts as done in the overall bar either way
        self.stage(index, "[green]done[/green]" if outcome.ok else "[red]failed[/red]")
        if self._progress is not None:
            self._progress.update(self._all, completed=sum(self._done))


@contextlib.contextmanager
def _reporter(labels: Sequence[str], quiet: bool) -> Iterator[_Bars]:
    screen = console(stderr=True)
    if quiet or not screen.is_terminal:
        yield _Bars(None, labels)
        return
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),  # estimated from the progress so far
        TextColumn("{task.fields[stage]}"),
    )
    with Progress(*columns, console=screen) as progress:
        yield _Bars(progress, labels)


def _transfer_text(done: int, total: int | None, started: float) -> str:
    """``12.6 MB/345.0 MB 81.2 MB/s 0:04 left``: what a download bar says of itself."""
    from rich.filesize import decimal

    elapsed = time.monotonic() - started
    speed = done / elapsed if elapsed > 0.05 else None
    text = f"{decimal(done)}/{decimal(total)}" if total else decimal(done)
    if speed:
        text += f" {decimal(int(speed))}/s"
        if total and done < total:
            left = int((total - done) / speed)
            text += f" {left // 60}:{left % 60:02d} left"
    return text


def _short(label: str, width: int = 36) -> str:
    name = Path(label).name or label
    return _escape(name if len(name) <= width else name[: width - 1] + "…")


def _conversion_table(outcomes: Sequence[Outcome]) -> None:
    from rich.table import Table

    from wavforge.cli.batch import SKIPPED

    table = Table()
    for header in ("item", "result", "WAV or error"):
        table.add_column(header, overflow="fold")  # paths are folded, never cut
    for outcome in outcomes:
        if outcome.ok:
            result = "already there" if outcome.status == SKIPPED else "[green]ok[/green]"
            table.add_row(_escape(outcome.item), result, _escape(outcome.output or ""))
        else:
            why = (outcome.error or {}).get("message", "")
            table.add_row(_escape(outcome.item), "[red]failed[/red]", _escape(why))
    console().print(table)


def _import_table(outcomes: Sequence[Outcome]) -> None:
    from rich.table import Table

    table = Table()
    for header in ("file", "title", "seconds"):
        table.add_column(header, overflow="fold")
    table.add_column("track id", no_wrap=True, min_width=36)  # never cut: it is the point
    for outcome in outcomes:
        if not outcome.ok:
            table.add_row(_escape(outcome.item), "", "", "[red]failed[/red]")
            continue
        seconds = f"{outcome.duration:.1f}" if outcome.duration is not None else ""
        table.add_row(
            _escape(outcome.item), _escape(outcome.title or ""), seconds, outcome.track_id or ""
        )
    console().print(table)
