"""The backlog, read from the database when Prometheus scrapes.

The rows are the truth about what waits (queue messages can be lost and are re-sent by the
sweep), and reading them at scrape time needs no gauge kept up to date by every process —
which in multi-process mode would need a rule for adding up gauges. Both counts walk an
index on ``status``: unfinished rows only, however many finished ones there are.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from wavforge.core import clock
from wavforge.core.leases import Claimable
from wavforge.core.states import UNFINISHED, DeliveryStatus
from wavforge.db.database import Database
from wavforge.db.models import Delivery, PeaksJob, WavTask

log = logging.getLogger(__name__)


class QueueDepth(Collector):
    """``wavforge_queue_depth{queue, state}`` and ``wavforge_database_up``.

    ``queue="conversions"``: WAV tasks ``pending`` (waiting for a worker) or ``running``.
    ``queue="peaks"``: sources' peaks jobs, the same two states.
    ``queue="callbacks"``: deliveries ``due`` now (or being sent) or ``scheduled`` for a
    retry later. A database that does not answer makes ``wavforge_database_up`` 0 and the
    depths absent, rather than failing the whole scrape.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily(
            "wavforge_database_up", "1 if the database answered this scrape's queries, else 0."
        )
        try:
            depths = self._depths()
        except SQLAlchemyError as error:
            log.warning("queue depth unavailable: %s", type(error).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        family = GaugeMetricFamily(
            "wavforge_queue_depth",
            "Work waiting or in progress, from the database: conversions and sources' peaks "
            "pending or running, callbacks due or scheduled for a retry.",
            labels=["queue", "state"],
        )
        for (queue, state), count in depths.items():
            family.add_metric([queue, state], count)
        yield family
        yield up

    def _depths(self) -> dict[tuple[str, str], int]:
        with self._db.read() as session:
            return {
                **_unfinished(session, WavTask, "conversions"),
                **_unfinished(session, PeaksJob, "peaks"),
                **_callbacks(session),
            }


def _unfinished(session: Session, table: Claimable, queue: str) -> dict[tuple[str, str], int]:
    """Pending and running rows of a table that workers claim (the same state names)."""
    rows = session.execute(
        select(table.status, func.count())
        .where(table.status.in_([status.value for status in UNFINISHED]))
        .group_by(table.status)
    ).all()
    counts = {status: int(count) for status, count in rows}
    return {(queue, s.value.lower()): counts.get(s.value, 0) for s in UNFINISHED}


def _callbacks(session: Session) -> dict[tuple[str, str], int]:
    later = case((Delivery.next_attempt_at > clock.now(), 1), else_=0)
    pending, scheduled = session.execute(
        select(func.count(), func.coalesce(func.sum(later), 0)).where(
            Delivery.status == DeliveryStatus.PENDING.value
        )
    ).one()
    return {
        ("callbacks", "due"): int(pending) - int(scheduled),
        ("callbacks", "scheduled"): int(scheduled),
    }
