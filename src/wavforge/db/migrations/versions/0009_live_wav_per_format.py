"""One live WAV per track and output format: a task keeps the format it was asked for
(``format_key``), and the unique index moves from the track alone to the track and format.

Live records from before keep their format: their key is computed here from the options
stored with them, by the rule of this revision (compact JSON with sorted keys, ``""`` for
none). Records no longer live keep ``""``; nothing reads their key.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_TASKS = sa.table(
    "wav_tasks",
    sa.column("id", sa.String()),
    sa.column("live_track_id", sa.String()),
    sa.column("options", sa.JSON()),
    sa.column("format_key", sa.String()),
    sa.column("created_at", sa.DateTime()),
)


def upgrade() -> None:
    with op.batch_alter_table("wav_tasks") as batch:
        batch.add_column(
            sa.Column("format_key", sa.String(length=300), server_default="", nullable=False)
        )
        batch.drop_constraint("uq_wav_tasks_live_track_id", type_="unique")
        batch.create_unique_constraint(
            "uq_wav_tasks_live_track_format", ["live_track_id", "format_key"]
        )
    _key_live_records()


def _key_live_records() -> None:
    """Give each live record the key of the options it was asked with."""
    bind = op.get_bind()
    live = bind.execute(
        sa.select(_TASKS.c.id, _TASKS.c.options).where(_TASKS.c.live_track_id.is_not(None))
    )
    keys = [{"task": task, "key": _key(options)} for task, options in live if options]
    if keys:
        bind.execute(
            _TASKS.update()
            .where(_TASKS.c.id == sa.bindparam("task"))
            .values(format_key=sa.bindparam("key")),
            keys,
        )


def _key(options: dict[str, object]) -> str:
    return json.dumps(options, sort_keys=True, separators=(",", ":"))


def downgrade() -> None:
    _release_all_but_one_per_track()
    with op.batch_alter_table("wav_tasks") as batch:
        batch.drop_constraint("uq_wav_tasks_live_track_format", type_="unique")
        batch.create_unique_constraint("uq_wav_tasks_live_track_id", ["live_track_id"])
        batch.drop_column("format_key")


def _release_all_but_one_per_track() -> None:
    """Before, a track held one live record: keep its default-format one, else its newest.

    The others stay downloadable until they expire; they just no longer hold the track.
    """
    bind = op.get_bind()
    live = bind.execute(
        sa.select(_TASKS.c.id, _TASKS.c.live_track_id)
        .where(_TASKS.c.live_track_id.is_not(None))
        .order_by(
            _TASKS.c.live_track_id,
            _TASKS.c.format_key != "",
            _TASKS.c.created_at.desc(),
            _TASKS.c.id.desc(),
        )
    )
    kept: set[str] = set()
    released = []
    for task, track in live:
        if track in kept:
            released.append({"task": task})
        kept.add(track)
    if released:
        bind.execute(
            _TASKS.update().where(_TASKS.c.id == sa.bindparam("task")).values(live_track_id=None),
            released,
        )
