"""Liveness: answers without auth, and checks the database answers too."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import literal, select

from wavforge import __version__
from wavforge.db.database import Database
from wavforge.http.deps import ContextDep
from wavforge.http.openapi import health_route

router = APIRouter(tags=["Operations"])


_PING = select(literal(1))


@router.get("/healthz", summary="Liveness", **health_route())
async def healthz(ctx: ContextDep) -> dict[str, Any]:
    await ctx.db.run(_ping, ctx.db)
    return {"status": "ok", "version": __version__}


def _ping(db: Database) -> None:
    with db.read_rows() as rows:
        rows.scalar(_PING, {})
