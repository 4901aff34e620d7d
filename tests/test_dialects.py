"""What a dialect is, in process: one object each, found by the registry, the only place that
knows a dialect's name or path prefix; and the vendor profiles' numbering."""

from __future__ import annotations

import ast
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.routing import APIRoute

from wavforge import profiles
from wavforge.core.records import WavRecord
from wavforge.core.states import WavStatus
from wavforge.dialects import DIALECTS, SUNO, UNIFIED, unified
from wavforge.errors import ALL_ERRORS, InsufficientCredits, MalformedBody, TooFrequent
from wavforge.http.routes import account, admin, files, health, imports, metrics, suno
from wavforge.http.routes import unified as unified_routes

import vendors

SRC = Path(__file__).resolve().parents[1] / "src" / "wavforge"
DIALECT_MODULES = SRC / "dialects"
# The Python client speaks to a server from outside: it must know the paths it calls.
OUTSIDE = (DIALECT_MODULES, SRC / "client")


def _sources() -> list[Path]:
    return [
        path
        for path in SRC.rglob("*.py")
        if not any(path.is_relative_to(folder) for folder in OUTSIDE)
    ]


def _compared_strings(tree: ast.AST) -> list[str]:
    """String constants used in a comparison, a ``startswith`` or as a mapping key."""
    found: list[str] = []
    for node in ast.walk(tree):
        operands: list[ast.AST] = []
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "startswith":
            operands = list(node.args)
        elif isinstance(node, ast.Dict):
            operands = [key for key in node.keys if key is not None]
        for operand in operands:
            for leaf in ast.walk(operand):
                if isinstance(leaf, ast.Constant) and isinstance(leaf.value, str):
                    found.append(leaf.value)
    return found


def test_no_dialect_name_or_prefix_is_compared_outside_the_dialect_modules() -> None:
    names = {dialect.name for dialect in DIALECTS}
    prefixes = tuple(prefix for dialect in DIALECTS for prefix in dialect.prefixes)
    offenders = [
        f"{path.relative_to(SRC)}: {value!r}"
        for path in _sources()
        for value in _compared_strings(ast.parse(path.read_text()))
        if value in names or value.rstrip("/").startswith(tuple(p.rstrip("/") for p in prefixes))
    ]
    assert offenders == []


def test_the_registry_and_the_routes_agree() -> None:
    """Every route is answered in the envelope of the dialect whose routes declare it."""
    routers = [(unified_routes.generate, UNIFIED), (unified_routes.user, UNIFIED)]
    for module in (suno, imports, account, admin, files, health, metrics):
        routers.append((module.router, SUNO))
    for router, dialect in routers:
        for route in router.routes:
            assert isinstance(route, APIRoute)
            assert DIALECTS.for_path(route.path) is dialect, route.path


def test_dialect_modules_import_no_database_http_client_or_metrics() -> None:
    code = (
        "import sys, wavforge.dialects\n"
        "heavy = {'sqlalchemy', 'httpx', 'prometheus_client', 'fastapi', 'av'}\n"
        "loaded = heavy & set(sys.modules)\n"
        "print(sorted(loaded))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_registry_finds_dialects_by_name_and_path() -> None:
    assert DIALECTS.named(SUNO.name) is SUNO and DIALECTS.named(UNIFIED.name) is UNIFIED
    assert DIALECTS.named(None) is DIALECTS.default is SUNO  # rows from before dialects
    assert DIALECTS.for_path("/api/generate/status/x") is UNIFIED
    assert DIALECTS.for_path("/api/user/balance") is UNIFIED
    assert DIALECTS.for_path("/api/v1/wav/record-info") is SUNO
    assert DIALECTS.for_path("/files/wav/x") is SUNO


def _record(status: WavStatus, url: str | None) -> WavRecord:
    return WavRecord(
        id="t1",
        track_id="a1",
        music_task_id="m1",
        track_position=0,
        dialect=UNIFIED.name,
        callback_url="https://example.com/cb",
        status=status,
        progress=1.0 if url else 0.4,
        wav_url=url,
        error_code=None if url else 501,
        error_message=None if url else "conversion failed",
        created_at=datetime(2026, 11, 12, 10, 30),
        completed_at=datetime(2026, 11, 12, 10, 31),
        options={},
        analysis=None,
        track_title="Song",
        credits_charged=1,
    )


@pytest.mark.parametrize(
    ("status", "url"),
    [(WavStatus.SUCCESS, "https://x/y.wav"), (WavStatus.GENERATE_WAV_FAILED, None)],
)
def test_the_unified_callback_is_the_status_answer(status: WavStatus, url: str | None) -> None:
    record = _record(status, url)
    assert UNIFIED.callback_body(record) == UNIFIED.success(unified.wav_status(record))
    assert UNIFIED.callback_body(record)["code"] == 200


def test_every_error_has_a_unified_type() -> None:
    for error in (*ALL_ERRORS, MalformedBody):
        assert unified.error_type(error()) in unified.ERROR_TYPES.values()


def test_profiles_number_each_error() -> None:
    assert set(profiles.PROFILES) == set(vendors.PROFILES)
    assert profiles.named(None) is profiles.DEFAULT is profiles.SUNOAPI
    assert profiles.named("gone") is profiles.DEFAULT  # a row naming a profile since removed
    kie = profiles.named("kie")
    assert (kie.code(InsufficientCredits()), kie.code(TooFrequent())) == (402, 429)
    assert kie.http_status(402) == 200
    assert profiles.SUNOAPI.code(InsufficientCredits()) == 429
    for profile in profiles.PROFILES.values():
        for error in ALL_ERRORS:
            assert 400 <= profile.code(error()) <= 599
