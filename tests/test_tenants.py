"""Tenant isolation (CONTRACT §1): another account's id answers exactly like an id that does not
exist, on every endpoint that takes one, so ids cannot be probed."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from audiogen import make_mp3
from conftest import Server, import_file, wait_for_wav
from support.receiver import Receiver

Probe = Callable[[httpx.Client, str], httpx.Response]

# Each endpoint that takes an id, with how it is asked about one: (which id it takes, probe).
ENDPOINTS: dict[str, tuple[str, Probe]] = {
    "suno wav record-info": (
        "wav",
        lambda c, i: c.get("/api/v1/wav/record-info", params={"taskId": i}),
    ),
    "suno music record-info": (
        "music",
        lambda c, i: c.get("/api/v1/generate/record-info", params={"taskId": i}),
    ),
    "suno callback log": ("wav", lambda c, i: c.get("/api/v1/wav/callbacks", params={"taskId": i})),
    "suno generate by taskId": (
        "music",
        lambda c, i: c.post(
            "/api/v1/wav/generate", json={"taskId": i, "callBackUrl": "http://127.0.0.1:9/cb"}
        ),
    ),
    "suno generate by audioId": (
        "track",
        lambda c, i: c.post(
            "/api/v1/wav/generate", json={"audioId": i, "callBackUrl": "http://127.0.0.1:9/cb"}
        ),
    ),
    "account wav peaks": ("wav", lambda c, i: c.get(f"/api/v1/account/wav-tasks/{i}/peaks")),
    "account source peaks": ("track", lambda c, i: c.get(f"/api/v1/account/tracks/{i}/peaks")),
    "unified status of a wav task": ("wav", lambda c, i: c.get(f"/api/generate/status/{i}")),
    "unified status of a music task": ("music", lambda c, i: c.get(f"/api/generate/status/{i}")),
    "unified detail of a wav task": (
        "wav",
        lambda c, i: c.get("/api/generate/detail/music", params={"task_id": i}),
    ),
    "unified detail of a music task": (
        "music",
        lambda c, i: c.get("/api/generate/detail/music", params={"task_id": i}),
    ),
    "unified submit by task_id": (
        "music",
        lambda c, i: c.post(
            "/api/generate/submit", json={"model": "convert-to-wav", "input": {"task_id": i}}
        ),
    ),
    "unified submit by audio_id": (
        "track",
        lambda c, i: c.post(
            "/api/generate/submit", json={"model": "convert-to-wav", "input": {"audio_id": i}}
        ),
    ),
}


@pytest.fixture(scope="module")
def owned(server: Server, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Ids of every kind, owned by one account and converted once."""
    mp3 = make_mp3(tmp_path_factory.mktemp("tenant") / "mine.mp3", 1.0)
    receiver = Receiver()
    try:
        with server.client(server.create_key()["key"]) as owner:
            music = import_file(owner, mp3)
            body = {"taskId": music["taskId"], "callBackUrl": receiver.url}
            wav = owner.post("/api/v1/wav/generate", json=body).json()["data"]["taskId"]
            wait_for_wav(owner, wav)
            receiver.wait_for(1)
    finally:
        receiver.close()
    return {"music": music["taskId"], "track": music["tracks"][0]["id"], "wav": wav}


def comparable(response: httpx.Response, foreign_id: str) -> tuple[int, Any]:
    """The answer with the probed id blanked out, so two probes can be compared."""
    return response.status_code, re.sub(re.escape(foreign_id), "<id>", response.text)


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_a_foreign_id_answers_like_a_missing_one(
    server: Server, owned: dict[str, str], endpoint: str
) -> None:
    kind, probe = ENDPOINTS[endpoint]
    foreign = owned[kind]
    missing = "f" * len(foreign)
    with server.client(server.create_key()["key"]) as stranger:
        to_foreign, to_missing = probe(stranger, foreign), probe(stranger, missing)
    assert to_foreign.status_code == 404, to_foreign.text
    assert comparable(to_foreign, foreign) == comparable(to_missing, missing)


def test_the_ledger_shows_only_the_callers_entries(server: Server, owned: dict[str, str]) -> None:
    with server.client(server.create_key(credits=9)["key"]) as stranger:
        book = stranger.get("/api/v1/account/ledger").json()["data"]
        assert [(e["amount"], e["reason"]) for e in book["entries"]] == [(9, "grant")]
        assert all(e["taskId"] != owned["wav"] for e in book["entries"])
