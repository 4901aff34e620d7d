"""The web console at ``/console``: server-rendered pages over the same core as the API."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from wavforge.console import admin, lists, reference, webhooks
from wavforge.console.routes import STATIC_DIR, router


def install(app: FastAPI) -> None:
    app.include_router(lists.router)  # first: its /partials/tasks/list is no task id
    app.include_router(router)
    app.include_router(admin.router)
    app.include_router(reference.router)
    app.include_router(webhooks.router)
    app.mount("/console/static", StaticFiles(directory=STATIC_DIR), name="console-static")
