"""The ``wavforge`` command.

- ``service``: run the service (``serve``, ``worker``) and administer it on this machine
  (``keys``, ``credits``, ``maintenance``, ``purge``), and ``convert-file``, which needs no
  server;
- ``remote``: ``import`` and ``convert``, clients of a running server (``wavforge_client``).

Every module imports what a command needs inside that command, so ``--help`` and
``convert-file`` start fast.
"""

# The modules register their commands on import, and --help lists them in that order.
# isort: off
from wavforge.cli import service
from wavforge.cli import remote
from wavforge.cli.base import app, plain_metavars

# isort: on

__all__ = ["app", "main", "remote", "service"]


def main() -> None:
    import typer.main

    plain_metavars(typer.main.get_command(app))()
