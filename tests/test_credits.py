"""Credits (CONTRACT §8): exact under concurrency, charged once per idempotent submission,
refunded once per failed task, every change a ledger row."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from wavforge.core import accounts, conversion, ledger, tracks, wav_tasks
from wavforge.core.leases import claim_wav
from wavforge.core.requests import WavRequest
from wavforge.core.states import WavStatus
from wavforge.core.tracks import ImportMeta, StagedFile
from wavforge.db.models import LedgerEntry, WavTask
from wavforge.dialects import SUNO
from wavforge.runtime import Runtime, build_runtime

from audiogen import make_mp3
from conftest import MakeServer, Server, import_file
from support.imports import import_tracks
from support.receiver import Receiver

GENERATE = "/api/v1/wav/generate"


def own_ledger(api: httpx.Client) -> dict[str, Any]:
    response = api.get("/api/v1/account/ledger", params={"limit": 1000})
    assert response.status_code == 200, response.text
    return dict(response.json()["data"])


def test_50_concurrent_submissions_on_credits_for_20(
    own_server: Server, mp3: Path, receiver: Receiver
) -> None:
    own_server.start()
    key = own_server.create_key(credits=20)["key"]
    with own_server.client(key) as api:
        audio_ids = import_tracks(api, mp3, 50)
    barrier = threading.Barrier(50)

    def submit(audio_id: str) -> httpx.Response:
        with own_server.client(key) as client:
            barrier.wait()
            return client.post(GENERATE, json={"audioId": audio_id, "callBackUrl": receiver.url})

    with ThreadPoolExecutor(50) as pool:
        responses = list(pool.map(submit, audio_ids))

    assert Counter(r.status_code for r in responses) == {200: 20, 429: 30}
    accepted = {r.json()["data"]["taskId"] for r in responses if r.status_code == 200}
    with own_server.client(key) as api:
        assert api.get("/api/v1/generate/credit").json()["data"] == 0
        book = own_ledger(api)
    assert book["balance"] == 0
    assert sum(entry["amount"] for entry in book["entries"]) == book["balance"]
    charges = [e for e in book["entries"] if e["reason"] == "charge"]
    assert {e["taskId"] for e in charges} == accepted and len(charges) == 20
    assert [e["amount"] for e in book["entries"] if e["reason"] == "grant"] == [20]


def test_one_idempotency_key_sent_20_times_at_once(
    server: Server, mp3: Path, receiver: Receiver
) -> None:
    key = server.create_key(credits=5)["key"]
    with server.client(key) as api:
        track = import_file(api, mp3)
    body = {"taskId": track["taskId"], "callBackUrl": receiver.url}
    headers = {"Idempotency-Key": "order-2026-11-21-0042"}
    barrier = threading.Barrier(20)

    def submit(_: int) -> httpx.Response:
        with server.client(key) as client:
            barrier.wait()
            return client.post(GENERATE, json=body, headers=headers)

    with ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(submit, range(20)))

    codes = Counter(r.status_code for r in responses)
    assert set(codes) <= {200, 409} and codes[200] >= 1, codes
    assert len({r.json()["data"]["taskId"] for r in responses if r.status_code == 200}) == 1
    for racing in (r for r in responses if r.status_code == 409):
        assert "in progress" in racing.json()["msg"]
    with server.client(key) as api:
        task_id = next(r for r in responses if r.status_code == 200).json()["data"]["taskId"]
        again = api.post(GENERATE, json=dict(reversed(body.items())), headers=headers)
        assert again.status_code == 200 and again.json()["data"]["taskId"] == task_id
        assert again.headers["Idempotent-Replayed"] == "true"
        book = own_ledger(api)
        other = api.post(GENERATE, json={**body, "bitDepth": 24}, headers=headers)
    assert book["balance"] == 4
    assert [e["taskId"] for e in book["entries"] if e["reason"] == "charge"] == [task_id]
    assert other.status_code == 400 and "different request" in other.json()["msg"]


def test_idempotency_replays_errors_too_and_keys_are_per_account(
    server: Server, mp3: Path, receiver: Receiver
) -> None:
    """A stored 429 answers again (Stripe semantics); another account's same key is its own."""
    poor_key, rich_key = server.create_key(credits=0)["key"], server.create_key()["key"]
    headers = {"Idempotency-Key": "same-key"}
    with server.client(poor_key) as poor, server.client(rich_key) as rich:
        poor_track, rich_track = import_file(poor, mp3), import_file(rich, mp3)
        refused = poor.post(
            GENERATE, json={"taskId": poor_track["taskId"], "callBackUrl": receiver.url},
            headers=headers,
        )  # fmt: skip
        assert refused.status_code == 429
        replay = poor.post(
            GENERATE, json={"taskId": poor_track["taskId"], "callBackUrl": receiver.url},
            headers=headers,
        )  # fmt: skip
        assert replay.status_code == 429 and replay.json() == refused.json()
        accepted = rich.post(
            GENERATE, json={"taskId": rich_track["taskId"], "callBackUrl": receiver.url},
            headers=headers,
        )  # fmt: skip
        assert accepted.status_code == 200


def test_idempotency_in_the_unified_dialect(server: Server, mp3: Path) -> None:
    key = server.create_key()["key"]
    with server.client(key) as api:
        track = import_file(api, mp3)
        body = {"model": "convert-to-wav", "input": {"task_id": track["taskId"]}}
        headers = {"Idempotency-Key": "u-1"}
        first = api.post("/api/generate/submit", json=body, headers=headers)
        second = api.post("/api/generate/submit", json=body, headers=headers)
        changed = api.post(
            "/api/generate/submit", json={**body, "input": {"task_id": "x"}}, headers=headers
        )
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert changed.status_code == 400
    assert set(changed.json()) == {"code", "data", "message", "error"}


@pytest.mark.parametrize(
    ("value", "code"), [("x" * 256, 413), ("bad key with spaces", 400), ("é".encode(), 400)]
)
def test_malformed_idempotency_keys_are_refused(api: httpx.Client, value: str, code: int) -> None:
    response = api.post(
        GENERATE,
        json={"taskId": "t", "callBackUrl": "http://127.0.0.1:9/cb"},
        headers={"Idempotency-Key": value},
    )
    assert response.status_code == code, response.text


# --- refunds --------------------------------------------------------------------------------


@pytest.fixture
def runtime(make_server: MakeServer, tmp_path: Path) -> Any:
    """The core itself (no server process) on a deployment of the mode under test."""
    settings = make_server(tmp_path, WAVFORGE_WAV_COST="3").settings()
    built = build_runtime(settings)
    yield built
    built.close()


def pending_task(runtime: Runtime, tmp_path: Path, credits: int) -> tuple[str, str]:
    """An account with one accepted (charged) conversion, through the core's own functions."""
    ctx = runtime.context
    account_id = accounts.create_account(ctx.db, "refunds", credits=credits).account_id
    source = make_mp3(tmp_path / "one.mp3", 0.5)
    staged = [StagedFile(path=source, filename="one.mp3")]
    music = tracks.import_files(ctx, account_id, staged, ImportMeta())
    request = WavRequest(dialect=SUNO.name, task_id=music.id)
    return account_id, wav_tasks.submit(ctx, account_id, request).id


def refund_rows(runtime: Runtime, task_id: str) -> int:
    with runtime.context.db.read() as session:
        rows = session.query(LedgerEntry).filter_by(wav_task_id=task_id, reason="refund")
        return rows.count()


def test_a_failure_processed_twice_refunds_once(runtime: Runtime, tmp_path: Path) -> None:
    """Two workers both end the task (the second after a lease mix-up): one refund."""
    ctx = runtime.context
    account_id, task_id = pending_task(runtime, tmp_path, credits=10)
    assert accounts.balance(ctx.db, account_id) == 7
    for owner in ("worker-a", "worker-b"):
        with ctx.db.write() as session:
            session.execute(
                update(WavTask)
                .where(WavTask.id == task_id)
                .values(status=WavStatus.PENDING, lease_owner=None)
            )
            assert claim_wav(session, task_id, owner, 60)
        conversion.fail(ctx, task_id, owner, 500, "boom")
    assert accounts.balance(ctx.db, account_id) == 10
    assert refund_rows(runtime, task_id) == 1
    assert ledger.total(ctx.db, account_id) == 10


def test_racing_refunds_of_one_task_move_credits_once(runtime: Runtime, tmp_path: Path) -> None:
    ctx = runtime.context
    account_id, task_id = pending_task(runtime, tmp_path, credits=3)
    barrier = threading.Barrier(8)

    def refund(_: int) -> bool:
        barrier.wait()
        with ctx.db.write() as session:
            return ledger.refund(session, account_id, task_id, 3)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(refund, range(8)))
    assert results.count(True) == 1
    assert accounts.balance(ctx.db, account_id) == 3 == ledger.total(ctx.db, account_id)
    assert refund_rows(runtime, task_id) == 1


def test_the_balance_cannot_go_negative_even_by_grant(runtime: Runtime) -> None:
    ctx = runtime.context
    account_id = accounts.create_account(ctx.db, "grants", credits=2).account_id
    assert ledger.grant(ctx.db, account_id, 5, "top-up") == 7
    with pytest.raises(Exception, match="below zero"):
        ledger.grant(ctx.db, account_id, -8)
    assert ledger.grant(ctx.db, account_id, -7) == 0
    assert ledger.total(ctx.db, account_id) == 0
