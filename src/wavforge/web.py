"""The whole web application: the API with the console mounted on it.

Composed here, above both, so that the API (:mod:`wavforge.http`) does not know the console
exists, and the console, which uses the API's request dependencies, does not form a cycle
with it.
"""

from __future__ import annotations

from fastapi import FastAPI

from wavforge import console
from wavforge.config import Settings
from wavforge.http.app import create_api
from wavforge.runtime import Runtime, build_runtime


def create_app(runtime: Runtime, *, with_worker: bool = True) -> FastAPI:
    """API and console; with ``with_worker`` the process also converts (the embedded
    default)."""
    app = create_api(runtime, with_worker=with_worker)
    console.install(app)
    return app


def app_from_environment() -> FastAPI:
    """An API process without a worker, on the settings in the environment: the import
    string ``wavforge serve`` gives uvicorn when it runs several API processes (the worker
    then runs in a process of its own).

    uvicorn has configured this process's logging with the configuration ``serve`` gave it
    (access lines off), so the factory leaves logging alone.
    """
    return create_app(build_runtime(Settings()), with_worker=False)
