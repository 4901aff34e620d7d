"""The API: both dialects' routers, the account and admin endpoints, files, health and
metrics over one core context. The console is mounted on it by :mod:`wavforge.web`."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp

from wavforge import __version__, profiles
from wavforge.http import errors
from wavforge.http.body_limit import JSON_BODY_LIMIT, BodyLimit
from wavforge.http.routes import (
    account,
    admin,
    files,
    health,
    imports,
    metrics,
    peaks,
    suno,
    unified,
    webhooks,
)
from wavforge.observability.requests import RequestObserver
from wavforge.runtime import Runtime

IMPORT_PATH = "/api/v1/music/import"


class _ObservedApp(FastAPI):
    """FastAPI with :class:`RequestObserver` outside every layer, even the one that turns a
    crash into a 500 (which ``add_middleware`` cannot reach), so every answer is timed and
    carries ``X-Request-ID``, and a crash is logged with the id of its request."""

    def build_middleware_stack(self) -> ASGIApp:
        settings = self.state.context.settings
        return RequestObserver(
            super().build_middleware_stack(), self.router.routes, log_requests=settings.access_log
        )


def create_api(runtime: Runtime, *, with_worker: bool = True) -> FastAPI:
    """The API; with ``with_worker`` the process also converts (the embedded default)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        runtime.sweep_scratch()
        worker = runtime.worker() if with_worker else None
        if worker:
            worker.start()
        # What exists now lives as long as the process. A full garbage collection walks
        # every object it holds (about 190,000 by now: the app, its models, SQLAlchemy),
        # which took 80-100 ms here with every request waiting; frozen, they are skipped.
        gc.freeze()
        try:
            yield
        finally:
            if worker:
                worker.stop()
            runtime.close()

    app = _ObservedApp(
        title="wavforge",
        version=__version__,
        description=(
            "Convert music tracks to lossless WAV. Suno-style dialect under /api/v1, "
            "unified dialect under /api/generate."
        ),
        lifespan=lifespan,
        docs_url=None,  # the console serves them from vendored files (works offline)
        redoc_url=None,
    )
    app.state.context = runtime.context
    errors.install(app)
    for module in (suno, unified, imports, account, peaks, webhooks, admin, files, health, metrics):
        app.include_router(module.router)
    upload_limit = runtime.context.settings.max_upload_bytes
    app.add_middleware(
        BodyLimit,
        # Uploads may be large; every JSON body, an import's list of URLs included, is small.
        limit_for=lambda path, content_type: (
            upload_limit
            if path == IMPORT_PATH and content_type.startswith(b"multipart/")
            else JSON_BODY_LIMIT
        ),
        profile=profiles.named(runtime.context.settings.profile),
    )
    return app
