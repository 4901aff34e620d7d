"""Several WAVs as one ZIP archive, streamed: which tasks may go in, and the archive itself.

An archive names up to :data:`MAX_MEMBERS` WAV tasks of one account, each with its file. Every
id is checked before a byte is sent: an id of another account is refused as one that does not
exist (404), a task without a file as such, so the answer is an envelope error or the whole
archive, never half of one. The archive is written as it is sent (``zipstream-ng``): entries
STORED (a WAV does not compress), each read from storage in chunks, sizes known in advance so
the response has a ``Content-Length``; memory stays constant whatever the total size.

The console cannot attach an ``Authorization`` header to a browser download, so an archive
also has a signed, expiring link (as the WAV links are), whose ident carries the account and
the task ids; following it checks the ids again.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from zipstream import ZIP_STORED, ZipStream

from wavforge.core import clock
from wavforge.core.context import Context
from wavforge.core.records import safe_filename
from wavforge.core.states import WITH_FILE
from wavforge.db.models import Track, WavTask
from wavforge.errors import Forbidden, Gone, InvalidRequest, NotFound
from wavforge.storage import Storage

MAX_MEMBERS = 100
MAX_ID = 128
ARCHIVE = "archive"  # the kind of a signed archive link (/files/archive/...)
FILENAME = "wavs.zip"
LINK_SECONDS = 3600


@dataclass(frozen=True)
class Member:
    task_id: str
    key: str
    size: int
    name: str  # the entry's name in the archive, unique within it


@dataclass(frozen=True)
class Archive:
    members: list[Member]
    size: int  # of the whole ZIP file, for Content-Length

    def stream(self, storage: Storage) -> Iterator[bytes]:
        """The ZIP file's bytes as they are made, each WAV read from storage in chunks."""
        return iter(_zip(storage, self.members))


@dataclass(frozen=True)
class Link:
    url: str
    expires_at: datetime
    count: int
    size: int


def checked_ids(task_ids: Sequence[str]) -> list[str]:
    """The ids, each once in the order given; 1 to MAX_MEMBERS of them, or a 400."""
    chosen = list(dict.fromkeys(task_ids))
    if not chosen:
        raise InvalidRequest("taskIds must name at least one WAV task")
    if len(chosen) > MAX_MEMBERS:
        raise InvalidRequest(f"an archive holds at most {MAX_MEMBERS} WAV tasks")
    if any(not task_id or len(task_id) > MAX_ID for task_id in chosen):
        raise InvalidRequest(f"a task id has 1 to {MAX_ID} characters")
    return chosen


def prepare(ctx: Context, account_id: str, task_ids: Sequence[str]) -> Archive:
    """The archive of these tasks of this account, each checked to have its WAV file."""
    chosen = checked_ids(task_ids)
    with ctx.db.read() as session:
        rows = session.execute(
            select(
                WavTask.id,
                WavTask.wav_key,
                WavTask.status,
                WavTask.expires_at,
                Track.title,
                Track.deleted_at,
            )
            .join(Track, Track.id == WavTask.track_id)
            .where(WavTask.account_id == account_id, WavTask.id.in_(chosen))
        ).all()
    found = {row.id: row for row in rows}
    names: set[str] = set()
    members = [_member(ctx, found.get(task_id), task_id, names) for task_id in chosen]
    return Archive(members, len(_zip(ctx.storage, members, sizes_only=True)))


def _member(ctx: Context, row: Any, task_id: str, names: set[str]) -> Member:
    if row is None:  # not there, or another account's: alike
        raise NotFound(f"no WAV task {task_id!r}")
    if row.status not in WITH_FILE:
        raise InvalidRequest(f"WAV task {task_id!r} has no WAV file ({row.status})")
    expired = row.expires_at is None or row.expires_at <= clock.now()
    size = None if expired or row.deleted_at is not None else ctx.storage.size(row.wav_key)
    if row.wav_key is None or size is None:
        raise Gone(f"the WAV of task {task_id!r} has expired or was deleted")
    return Member(task_id, row.wav_key, size, _unique(safe_filename(row.title, ".wav"), names))


def _unique(name: str, taken: set[str]) -> str:
    """``name``, or ``stem (2).wav`` and so on when the archive already holds it."""
    stem, suffix = name.rsplit(".", 1)
    candidate, number = name, 1
    while candidate.lower() in taken:
        number += 1
        candidate = f"{stem} ({number}).{suffix}"
    taken.add(candidate.lower())
    return candidate


def _zip(storage: Storage, members: Sequence[Member], sizes_only: bool = False) -> ZipStream:
    archive = ZipStream(compress_type=ZIP_STORED, sized=True)
    for member in members:
        # open_range is a generator: nothing is read until the entry is written.
        data = iter(()) if sizes_only else storage.open_range(member.key)
        archive.add(data, member.name, size=member.size)
    return archive


# --- signed links -------------------------------------------------------------------------


def link(ctx: Context, account_id: str, task_ids: Sequence[str]) -> Link:
    """A signed link to the archive of these tasks, checked now and again when followed."""
    archive = prepare(ctx, account_id, task_ids)
    ids = [member.task_id for member in archive.members]
    raw = json.dumps([account_id, ids], separators=(",", ":")).encode()
    ident = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    expires_at = clock.now().replace(microsecond=0) + timedelta(seconds=LINK_SECONDS)
    url = ctx.links.url(ARCHIVE, ident, FILENAME, expires_at)
    return Link(url, expires_at, len(ids), archive.size)


def opened(ctx: Context, ident: str) -> Archive:
    """The archive a verified link's ident names (its signature was checked by the caller)."""
    try:
        raw = base64.urlsafe_b64decode(ident + "=" * (-len(ident) % 4))
        account_id, task_ids = json.loads(raw)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise Forbidden() from None
    if not isinstance(account_id, str) or not isinstance(task_ids, list):
        raise Forbidden()
    if not all(isinstance(task_id, str) for task_id in task_ids):
        raise Forbidden()
    return prepare(ctx, account_id, task_ids)
