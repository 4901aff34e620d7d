"""The ``wavforge`` command.

- ``service``: run the service (``serve``, ``worker``) and administer it on this machine
  (``keys``, ``credits``, ``maintenance``, ``purge``), and ``convert-file``, which needs no
  server;
- ``remote``: ``import`` and ``convert``, clients of a running server (``wavforge_client``).

Every module imports what a command needs inside that command, so ``--help`` starts fast.
``convert-file``, run over many files, starts faster still: :func:`main` gives its arguments
to ``convert_file`` before anything builds the Typer app (which costs Typer, click and
pydantic), and the app, ``service`` and ``remote`` are loaded only when a command needs them.
"""

from __future__ import annotations

import os
import sys
from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typer import Typer

    from wavforge.cli import remote, service
    from wavforge.cli.base import app

__all__ = ["app", "main", "remote", "service"]


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["convert-file"] and not _completing():
        from wavforge.cli import convert_file

        if convert_file.main(args[1:]):
            return

    import typer.main

    from wavforge.cli.base import plain_metavars

    plain_metavars(typer.main.get_command(_app()))()


def __getattr__(name: str) -> Any:
    """``app``, ``service`` and ``remote``, loaded on first use."""
    if name == "app":
        return _app()
    if name in ("service", "remote"):
        _app()
        return import_module(f"wavforge.cli.{name}")
    raise AttributeError(f"module 'wavforge.cli' has no attribute {name!r}")


def _app() -> Typer:
    """The root Typer app with every command on it."""
    # The modules register their commands on import, and --help lists them in that order.
    import_module("wavforge.cli.service")
    import_module("wavforge.cli.remote")
    from wavforge.cli.base import app

    return app


def _completing() -> bool:
    """Whether the shell asks for completions (click's ``_WAVFORGE_COMPLETE``), which only
    the Typer app answers."""
    return any(name.startswith("_") and name.endswith("_COMPLETE") for name in os.environ)
