"""Liveness: answers without auth, and checks the database answers too."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import text

from wavforge import __version__
from wavforge.http.deps import ContextDep
from wavforge.http.openapi import health_route

router = APIRouter(tags=["Operations"])


@router.get("/healthz", summary="Liveness", **health_route())
async def healthz(ctx: ContextDep) -> dict[str, Any]:
    def ping() -> None:
        with ctx.db.read() as session:
            session.execute(text("SELECT 1"))

    await run_in_threadpool(ping)
    return {"status": "ok", "version": __version__}
