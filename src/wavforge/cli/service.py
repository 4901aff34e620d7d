"""Commands that run or administer the service on this machine, and ``convert-file``.

They open the database and storage named by the ``WAVFORGE_*`` settings directly; heavy
modules are imported inside each command, so ``--help`` starts in a blink. ``convert-file``
is declared here (its options and help) and runs in ``wavforge.cli.convert_file``, usually
without this module being imported at all.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from wavforge.cli.base import DitherOption, JsonOption, PresetOption, app, console, fail
from wavforge.cli.common import settings as _settings
from wavforge.profiles import PROFILES

if TYPE_CHECKING:  # imported where used: `--help` should start in a blink
    from wavforge.core.accounts import IssuedKey, KeyInfo
    from wavforge.db.database import Database

keys_app = typer.Typer(help="Create, list, revoke and reset API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@contextlib.contextmanager
def _domain_errors() -> Iterator[None]:
    """A refused operation (unknown id, bad amount) ends the command with its message."""
    from wavforge.errors import WavforgeError

    try:
        yield
    except WavforgeError as error:
        fail(error.message)


def _database() -> Database:
    from wavforge.db import migrate
    from wavforge.db.database import Database

    settings = _settings()
    fresh = settings.sqlite_path
    fresh = fresh if fresh is not None and not fresh.exists() else None
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)
    migrate.upgrade(db)
    if fresh is not None:
        # The classic trap: a key made in a database no server reads gets 401 everywhere.
        console(stderr=True).print(
            f"note: no database was here, so a new one was made at {fresh}; a server started "
            "with another WAVFORGE_DATA_DIR will not see it (wavforge status tells)",
            highlight=False,
            soft_wrap=True,
        )
    return db


@app.command()
def status(as_json: JsonOption = False) -> None:
    """Which data directory and database this command uses, and whether a server runs on it."""
    from wavforge import presence

    settings = _settings()
    sqlite = settings.sqlite_path
    server = presence.find(settings.data_dir)
    database = str(sqlite) if sqlite else _without_password(settings.resolved_database_url)
    missing = sqlite is not None and not sqlite.exists()
    if as_json:
        facts = {
            "data_dir": str(settings.data_dir),
            "database": database,
            "database_exists": None if sqlite is None else not missing,
            "server": {"pid": server.pid, "url": server.url} if server else None,
        }
        print(json.dumps(facts))
        return
    print(f"data directory: {settings.data_dir}")
    print(f"database:       {database}{' (not created yet)' if missing else ''}")
    where = f"running at {server.url} (pid {server.pid})" if server else "none on this directory"
    print(f"server:         {where}")


@app.command("test-file")
def test_file(
    target: Annotated[Path, typer.Argument(help="Where to write the MP3.", show_default=False)],
    seconds: Annotated[float, typer.Option(min=1, max=600, help="Length.")] = 10.0,
    force: Annotated[bool, typer.Option("--force", help="Replace TARGET if it exists.")] = False,
) -> None:
    """Write a short stereo MP3 (a chord) to try the service with, when no music is at hand."""
    from wavforge.audio.examples import write_chord_mp3

    if target.exists() and not force:
        fail(f"{target}: exists; pass --force to replace it", code=2)
    write_chord_mp3(target, seconds)
    print(f"{target}: {seconds:g} s of MP3, ready to import")


@app.command()
def backup(
    target: Annotated[Path, typer.Argument(help="A new or empty folder.", show_default=False)],
    as_json: JsonOption = False,
) -> None:
    """Copy the embedded database and files, consistently, while the server runs.

    The copy is a data directory: `WAVFORGE_DATA_DIR=TARGET wavforge serve` restores it.
    """
    from wavforge.backup import BackupRefused, back_up

    try:
        made = back_up(_settings(), target)
    except BackupRefused as refused:
        fail(str(refused))
    if as_json:
        print(json.dumps({**dataclasses.asdict(made), "target": str(made.target)}))
        return
    print(
        f"backed up to {made.target}: database {made.database_bytes:,} bytes, "
        f"{made.files} files ({made.file_bytes:,} bytes); restore with "
        f"WAVFORGE_DATA_DIR={made.target} wavforge serve"
    )


@app.command("migrate-to")
def migrate_to(
    database_url: Annotated[
        str, typer.Option(help="The PostgreSQL database to move into (empty or new).")
    ],
    storage_url: Annotated[
        str, typer.Option(help="Where the files go: s3://bucket/prefix (or file:///path).")
    ],
    as_json: JsonOption = False,
) -> None:
    """Move the embedded mode (SQLite and local files) to a database server and S3.

    Stop the server first. Nothing here is deleted; start the scale-out mode with the same
    URLs once it is done (and WAVFORGE_S3_ENDPOINT_URL, credentials, as for the server).
    """
    from wavforge import presence
    from wavforge.relocation import RelocationRefused, relocate

    source = _settings()
    target = _settings(database_url=database_url, storage_url=storage_url)
    if presence.find(source.data_dir) is not None:
        fail("a server is running on this data directory: stop it first")
    report = (lambda _: None) if as_json else print
    try:
        moved = relocate(source, target, report)
    except RelocationRefused as refused:
        fail(str(refused))
    if as_json:
        print(json.dumps(dataclasses.asdict(moved)))
    else:
        print(f"moved {sum(moved.rows.values())} rows and {moved.files} files")


def _without_password(url: str) -> str:
    """A database URL fit to print: the password is replaced by ***."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address (default: 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (default: 8000).")] = None,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="API only; convert elsewhere.")
    ] = False,
    processes: Annotated[
        int | None, typer.Option(min=1, max=64, help="API processes (default: 1).")
    ] = None,
) -> None:
    """Run the API, with an embedded worker unless --no-worker."""
    from wavforge import serving
    from wavforge.runtime import configure_logging

    settings = _settings(host=host, port=port, api_processes=processes)
    configure_logging()
    try:
        serving.serve(settings, with_worker=not no_worker)
    except serving.PortTaken as error:
        fail(str(error))


@app.command()
def worker() -> None:
    """Run a worker alone: conversions, callbacks and recovery, no API."""
    from wavforge import serving

    try:
        serving.run_worker(_settings())
    except serving.MetricsPortTaken as error:
        fail(str(error))


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Who the account is for.")],
    credits: Annotated[
        int,
        typer.Option(
            min=0,
            help="Starting credit balance; with 0 (the default) every conversion is refused "
            "until credits are granted.",
        ),
    ] = 0,
    admin: Annotated[bool, typer.Option("--admin", help="May use the admin API.")] = False,
    profile: Annotated[
        str | None,
        typer.Option(
            help="Vendor profile: how errors are numbered for this vendor's clients "
            f"({', '.join(PROFILES)}; default: the server's WAVFORGE_PROFILE)."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create an account and its first key; the key is shown this once."""
    from wavforge.core import accounts

    if profile is not None and profile not in PROFILES:
        choices = ", ".join(PROFILES)
        raise typer.BadParameter(f"choose one of: {choices}", param_hint="--profile")
    issued = accounts.create_account(
        _database(), name, credits=credits, admin=admin, profile=profile
    )
    _show_issued(issued, as_json, credits=credits, profile=issued.profile)
    if credits == 0:
        # The trap: the first conversion then answers "insufficient credits" (429 in the
        # default profile), which generic HTTP clients read as "slow down".
        console(stderr=True).print(
            f"note: this account has 0 credits, so conversions are refused until you run: "
            f"wavforge credits grant {issued.account_id} 100",
            highlight=False,
            soft_wrap=True,
        )


def _show_issued(issued: IssuedKey, as_json: bool, **extra: Any) -> None:
    data = {
        "key": issued.key,
        "key_id": issued.key_id,
        "account_id": issued.account_id,
        "webhook_secret": issued.webhook_secret,
        **extra,
    }
    if as_json:
        print(json.dumps(data))
        return
    console().print(f"API key (shown once): [bold]{issued.key}[/bold]")
    console().print(f"key id: {issued.key_id}   account: {issued.account_id}")


@keys_app.command("list")
def keys_list(as_json: JsonOption = False) -> None:
    """List keys (prefixes only; keys themselves are not stored)."""
    from rich.table import Table

    from wavforge.core import accounts

    rows = accounts.list_keys(_database())
    if as_json:
        print(json.dumps([_key_json(row) for row in rows]))
        return
    header = ("key id", "prefix", "name", "account", "credits", "admin", "last used", "state")
    lines = [
        (
            row.key_id,
            row.prefix + "…",
            row.name,
            row.account_id,
            str(row.credits),
            "yes" if row.is_admin else "",
            _when(row.last_used_at),
            "revoked" if row.revoked_at else "active",
        )
        for row in rows
    ]
    if not sys.stdout.isatty():  # piped: tab-separated, whole, for grep and cut
        print("\n".join("\t".join(line) for line in (header, *lines)))
        return
    table = Table(*header)
    for column in (table.columns[0], table.columns[3]):
        column.no_wrap, column.min_width = True, 24  # ids are copied whole, never cut
    for line in lines:
        table.add_row(*line)
    console().print(table)


def _key_json(row: KeyInfo) -> dict[str, Any]:
    return {
        "key_id": row.key_id,
        "prefix": row.prefix,
        "name": row.name,
        "account_id": row.account_id,
        "credits": row.credits,
        "admin": row.is_admin,
        "profile": row.profile,
        "created_at": _when(row.created_at),
        "last_used_at": _when(row.last_used_at) or None,
        "revoked": row.revoked_at is not None,
    }


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


def _account_id(db: Database, given: str) -> str:
    from wavforge.core import accounts

    return _whole_id(given, [row.account_id for row in accounts.list_keys(db)], "account")


def _whole_id(given: str, known: list[str], kind: str) -> str:
    """An id, or an unambiguous start of one (as ``git`` takes commits); else the id as given,
    for the command's own "no such" answer."""
    if given in known:
        return given
    matches = sorted({whole for whole in known if whole.startswith(given)})
    if len(matches) > 1 and given:
        fail(f"{given!r} is the start of several {kind} ids: {', '.join(matches[:5])}", code=2)
    return matches[0] if matches and given else given


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[
        str, typer.Argument(help="The key id, or enough of its start (see `keys list`).")
    ],
) -> None:
    """Revoke a key at once."""
    from wavforge.core import accounts

    db = _database()
    key_id = _whole_id(key_id, [row.key_id for row in accounts.list_keys(db)], "key")
    with _domain_errors():
        accounts.revoke_key(db, key_id)
    console().print(f"revoked {key_id}")


@keys_app.command("reset")
def keys_reset(
    key_id: Annotated[
        str, typer.Argument(help="The key id, or enough of its start (see `keys list`).")
    ],
    as_json: JsonOption = False,
) -> None:
    """Revoke a key and print its replacement."""
    from wavforge.core import accounts

    db = _database()
    key_id = _whole_id(key_id, [row.key_id for row in accounts.list_keys(db)], "key")
    with _domain_errors():
        issued = accounts.reset_key(db, key_id)
    _show_issued(issued, as_json)


@keys_app.command("rotate-secret")
def keys_rotate_secret(
    account_id: Annotated[str, typer.Argument(help="The account whose secret to replace.")],
    as_json: JsonOption = False,
) -> None:
    """Replace an account's webhook signing secret; the old one also signs for 24 hours."""
    from wavforge.core import accounts

    db = _database()
    account_id = _account_id(db, account_id)
    with _domain_errors():
        rotated = accounts.rotate_webhook_secret(db, account_id)
    until = rotated.previous_valid_until.strftime("%Y-%m-%d %H:%M:%S")
    if as_json:
        print(json.dumps({"webhook_secret": rotated.webhook_secret, "previous_valid_until": until}))
        return
    console().print(f"webhook secret: [bold]{rotated.webhook_secret}[/bold]")
    console().print(f"the previous secret also signs until {until} UTC")


credits_app = typer.Typer(help="Grant credits and read an account's ledger.", no_args_is_help=True)
app.add_typer(credits_app, name="credits")


@credits_app.command("grant")
def credits_grant(
    account_id: Annotated[
        str, typer.Argument(help="The account id, or enough of its start (see `keys list`).")
    ],
    amount: Annotated[
        int, typer.Argument(help="Credits to add; negative (after `--`) takes them away.")
    ],
    note: Annotated[str, typer.Option(help="Why, for the ledger.")] = "",
    as_json: JsonOption = False,
) -> None:
    """Add credits to an account (a ledger entry); the balance never goes below zero."""
    from wavforge.core import ledger

    db = _database()
    account_id = _account_id(db, account_id)
    with _domain_errors():
        balance = ledger.grant(db, account_id, amount, note)
    if as_json:
        print(json.dumps({"account_id": account_id, "balance": balance}))
        return
    console().print(f"{account_id}: balance {balance}")


@credits_app.command("ledger")
def credits_ledger(
    account_id: Annotated[
        str, typer.Argument(help="The account id, or enough of its start (see `keys list`).")
    ],
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Newest entries to show.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """An account's newest ledger entries: grants, charges and refunds."""
    from rich.table import Table

    from wavforge.core import ledger

    db = _database()
    account_id = _account_id(db, account_id)
    entries = ledger.entries(db, account_id, limit)
    if as_json:
        print(json.dumps([_entry_json(entry) for entry in entries]))
        return
    table = Table("time", "amount", "reason", "task", "note")
    for entry in entries:
        row = _entry_json(entry)
        table.add_row(
            row["created_at"], f"{entry.amount:+d}", entry.reason, row["task_id"] or "", entry.note
        )
    console().print(table)


def _entry_json(entry: Any) -> dict[str, Any]:
    return {
        "created_at": _when(entry.created_at),
        "amount": entry.amount,
        "reason": entry.reason,
        "task_id": entry.wav_task_id,
        "note": entry.note,
    }


@app.command()
def maintenance(
    state: Annotated[str, typer.Argument(help="on, off or status.")],
) -> None:
    """Switch maintenance mode: submissions answer 455, reads go on. No restart needed."""
    from wavforge.core import maintenance as switch

    if state not in ("on", "off", "status"):
        fail("expected on, off or status", code=2)
    db = _database()
    if state != "status":
        switch.switch(db, state == "on")
    print(f"maintenance {'on' if switch.is_on(db) else 'off'}")


@app.command()
def purge(
    as_json: JsonOption = False,
    orphans: Annotated[
        bool,
        typer.Option(
            "--orphans",
            help="Also delete WAVs no record points to, and sources' peaks whose source is "
            "gone (lists the whole store).",
        ),
    ] = False,
) -> None:
    """Run the retention job now: delete WAV files past their expiry (records stay)."""
    from wavforge.core import orphans as strays
    from wavforge.core import retention
    from wavforge.runtime import build_runtime

    runtime = build_runtime(_settings())
    try:
        result = dataclasses.asdict(retention.purge(runtime.context))
        if orphans:
            result |= dataclasses.asdict(strays.reap(runtime.context))
    finally:
        runtime.close()
    if as_json:
        print(json.dumps(result))
        return
    if orphans:
        print(
            f"deleted {result['orphans_deleted']} orphan files and "
            f"{result['partial_writes_discarded']} interrupted writes"
        )
    print(
        f"deleted {result['files_deleted']} expired files, "
        f"{result['idempotency_keys_deleted']} old idempotency keys and "
        f"{result['stale_files_deleted']} stale staged files"
    )


@app.command("convert-file")
def convert_file(
    source: Annotated[Path, typer.Argument(help="An audio file.", exists=True, dir_okay=False)],
    target: Annotated[Path, typer.Argument(help="Where to write the WAV.")],
    bit_depth: Annotated[
        int | None, typer.Option("--bit-depth", help="16, 24 or 32 (default: as the source).")
    ] = None,
    as_float: Annotated[bool, typer.Option("--float", help="32-bit float samples.")] = False,
    sample_rate: Annotated[
        int | None, typer.Option("--sample-rate", help="Resample to this rate in Hz.")
    ] = None,
    dither: DitherOption = None,
    preset: PresetOption = None,
    loudness: Annotated[
        bool | None,
        typer.Option(
            "--loudness/--no-loudness",
            help="Measure loudness and true peak (CPU-hungry; by default only with --json).",
            show_default=False,
        ),
    ] = None,
    peaks: Annotated[
        bool,
        typer.Option("--peaks", help="Also write the waveform peaks beside OUTPUT (.peaks.json)."),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the analysis (with SHA-256) as JSON.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Replace OUTPUT if it exists (never INPUT).")
    ] = False,
) -> None:
    """Convert a local file with the service's audio engine; no server needed."""
    # Usually run without Typer (wavforge.cli.main); here for --help and what parse leaves.
    from wavforge.cli import convert_file as command

    command.run(
        command.Request(
            source=source,
            target=target,
            bit_depth=bit_depth,
            as_float=as_float,
            sample_rate=sample_rate,
            dither=dither,
            preset=preset,
            loudness=loudness,
            peaks=peaks,
            as_json=as_json,
            force=force,
        )
    )
