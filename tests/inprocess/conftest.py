"""A real core context per test: a migrated SQLite file, local storage and the dialects, with
the fakes of :mod:`inprocess.fakes` for the queue, converter, prober, callbacks and time.

``@pytest.mark.settings(name=value, ...)`` changes the test's settings.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from wavforge.config import Settings
from wavforge.core import clock as core_clock
from wavforge.core import conversion, leases, maintenance, telemetry
from wavforge.core.context import Context
from wavforge.core.link_key import link_key
from wavforge.core.maintenance import MaintenanceGate
from wavforge.core.rate_limits import RateLimiter
from wavforge.core.records import TrackRecord
from wavforge.db import migrate
from wavforge.db.database import Database
from wavforge.dialects import DIALECTS
from wavforge.links import LinkSigner
from wavforge.storage import open_storage

from .fakes import (
    Clock,
    EventLog,
    FakeConverter,
    FakeProber,
    RecordingDispatcher,
    ScriptedReceiver,
)
from .support import Account, new_account, new_track


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "settings(**values): settings of the test's context")


@pytest.fixture(scope="session")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database file migrated once per test process, its link key made; each test starts
    from a copy (a copy takes a millisecond, migrating about a hundred)."""
    path = tmp_path_factory.mktemp("schema") / "wavforge.db"
    db = Database(f"sqlite:///{path}")
    try:
        migrate.upgrade(db)
        link_key(Settings(data_dir=path.parent, secret_key=None), db)
    finally:
        db.dispose()  # the last connection closed: the log is in the file
    return path


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Time as the core reads it, standing still until the test moves it."""
    frozen = Clock(datetime.now(UTC).replace(tzinfo=None, microsecond=0))
    monkeypatch.setattr(core_clock, "now", frozen.now)  # clock.later reads it too
    monotonic = SimpleNamespace(monotonic=frozen.monotonic)
    monkeypatch.setattr(conversion, "time", monotonic)  # a conversion's duration
    monkeypatch.setattr(leases, "time", monotonic)  # the lease heartbeat's interval
    monkeypatch.setattr(maintenance, "time", monotonic)  # the maintenance switch's cache
    return frozen


@pytest.fixture
def events() -> Iterator[EventLog]:
    """The core's telemetry, recorded; whoever listened before listens again afterwards."""
    before = telemetry.events()
    log = EventLog()
    telemetry.install(log)
    yield log
    telemetry.install(before)


@pytest.fixture
def dispatcher() -> RecordingDispatcher:
    return RecordingDispatcher()


@pytest.fixture
def converter() -> FakeConverter:
    return FakeConverter()


@pytest.fixture
def prober() -> FakeProber:
    return FakeProber()


@pytest.fixture
def receiver() -> ScriptedReceiver:
    """Every callback attempt's POST (the context's ``post``), answered from a script
    instead of the network."""
    return ScriptedReceiver()


@pytest.fixture
def settings(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    for name in list(os.environ):
        if name.startswith("WAVFORGE_"):  # the test's settings are only what it says
            monkeypatch.delenv(name)
    marker = request.node.get_closest_marker("settings")
    values: dict[str, Any] = dict(marker.kwargs) if marker else {}
    return Settings(data_dir=tmp_path / "data", **values)


@pytest.fixture
def ctx(
    settings: Settings,
    migrated: Path,
    clock: Clock,
    events: EventLog,
    dispatcher: RecordingDispatcher,
    converter: FakeConverter,
    prober: FakeProber,
    receiver: ScriptedReceiver,
) -> Iterator[Context]:
    """The core's context as ``runtime.build_runtime`` makes it, on a database of its own."""
    settings.data_dir.mkdir(parents=True)
    settings.scratch_dir.mkdir()
    path = settings.data_dir / "wavforge.db"
    shutil.copyfile(migrated, path)
    db = Database(f"sqlite:///{path}")
    try:
        yield Context(
            settings=settings,
            db=db,
            storage=open_storage(settings),
            links=LinkSigner(link_key(settings, db), settings.base_url),
            dispatch=dispatcher,
            post=receiver,
            converter=converter,
            prober=prober,
            dialects=DIALECTS,
            limiter=RateLimiter(settings.rate_limit, settings.rate_limit_storage),
            maintenance=MaintenanceGate(db),
        )
    finally:
        db.dispose()


@pytest.fixture
def account(ctx: Context) -> Account:
    """An account with 10 credits."""
    return new_account(ctx)


@pytest.fixture
def track(ctx: Context, account: Account) -> TrackRecord:
    """One imported track of :func:`account`."""
    return new_track(ctx, account)
