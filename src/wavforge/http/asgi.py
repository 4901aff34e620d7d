"""The API as an import string, for servers that start it in processes of their own."""

from __future__ import annotations

from fastapi import FastAPI

from wavforge.config import Settings
from wavforge.http.app import create_app
from wavforge.runtime import build_runtime


def app_from_environment() -> FastAPI:
    """An API process without a worker, on the settings in the environment.

    ``wavforge serve`` with several API processes runs the worker in a process of its own.
    uvicorn has configured this process's logging with the configuration ``serve`` gave it
    (access lines off), so the factory leaves logging alone.
    """
    return create_app(build_runtime(Settings()), with_worker=False)
