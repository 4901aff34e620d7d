"""Paged, searched and filtered listings: /api/v1/account/{tracks,wav-tasks,ledger}/search."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from conftest import Server, assert_envelope, wait_for_wav
from support.imports import import_tracks
from support.receiver import Receiver

TRACKS = "/api/v1/account/tracks/search"
TASKS = "/api/v1/account/wav-tasks/search"
LEDGER = "/api/v1/account/ledger/search"


def page(api: httpx.Client, path: str, _expect: int = 200, **params: Any) -> Any:
    data = assert_envelope(api.get(path, params=params), _expect)["data"]
    return dict(data) if data is not None else None


def every_page(
    api: httpx.Client, path: str, key: str, between: Any = None, **params: Any
) -> tuple[list[str], set[int]]:
    """Every row's ``key`` across all pages, in order, and the totals the pages reported;
    ``between`` runs after each page (to insert rows while paging)."""
    found: list[str] = []
    totals: set[int] = set()
    cursor = None
    while True:
        data = page(api, path, **params, **({"cursor": cursor} if cursor else {}))
        found += [row[key] for row in data["items"]]
        totals.add(data["total"])
        cursor = data["nextCursor"]
        if cursor is None:
            return found, totals
        assert len(data["items"]) == params.get("limit", 50)
        if between is not None:
            between()


def titled(api: httpx.Client, mp3: Path, title: str, count: int = 1) -> list[str]:
    data = mp3.read_bytes()
    files = [("file", (f"{title}-{i}.mp3", data)) for i in range(count)]
    response = api.post("/api/v1/music/import", files=files, data={"title": title})
    assert response.status_code == 200, response.text
    return [track["id"] for track in response.json()["data"]["tracks"]]


def test_paging_returns_each_track_once_in_order_even_with_inserts_between_pages(
    api: httpx.Client, mp3: Path
) -> None:
    ids = import_tracks(api, mp3, 25)  # two requests: rows sharing a created_at, and not
    newest_first = [
        t["id"] for t in assert_envelope(api.get("/api/v1/account/tracks"), 200)["data"]
    ]
    assert sorted(newest_first) == sorted(ids)
    inserted: list[str] = []
    found, totals = every_page(
        api, TRACKS, "id", between=lambda: inserted.extend(import_tracks(api, mp3, 2)), limit=7
    )
    assert found == newest_first  # each once, in order; the new rows are newer than the cursor
    assert totals == {25, 27, 29, 31}  # the total counts what matches now
    assert len(inserted) == 6
    again, (total,) = every_page(api, TRACKS, "id", limit=200)
    assert set(again[:6]) == set(inserted) and again[6:] == found
    assert total == 31


def test_prev_cursor_walks_back_over_the_same_pages(api: httpx.Client, mp3: Path) -> None:
    """Four pages on by nextCursor, then back by prevCursor: the same tracks on each page, and
    none before the first. The filters travel with the caller, as they do going on."""
    import_tracks(api, mp3, 14)
    forward = [page(api, TRACKS, limit=4, q="")]
    while forward[-1]["nextCursor"]:
        forward.append(page(api, TRACKS, limit=4, cursor=forward[-1]["nextCursor"]))
    assert [len(p["items"]) for p in forward] == [4, 4, 4, 2]
    assert forward[0]["prevCursor"] is None
    back = [forward[-1]]
    while back[-1]["prevCursor"]:
        back.append(page(api, TRACKS, limit=4, cursor=back[-1]["prevCursor"]))
    ids = [[t["id"] for t in p["items"]] for p in forward]
    assert [[t["id"] for t in p["items"]] for p in reversed(back)] == ids
    assert page(api, TASKS, cursor=forward[1]["prevCursor"], _expect=400) is None


def test_search_by_title_and_id_prefix_with_counts(api: httpx.Client, mp3: Path) -> None:
    alpha = titled(api, mp3, "Alpha 50% Mix", 3)
    beta = titled(api, mp3, "Beta_Song", 2)
    assert page(api, TRACKS, q="alpha 50%")["total"] == 3
    assert {t["id"] for t in page(api, TRACKS, q="ALPHA")["items"]} == set(alpha)
    assert page(api, TRACKS, q="Beta_")["total"] == 2
    assert page(api, TRACKS, q="Beta%")["total"] == 0  # LIKE's wildcards are plain characters
    assert page(api, TRACKS, q="a_Song")["total"] == 2
    (one,) = page(api, TRACKS, q=beta[1][:12])["items"]
    assert one["id"] == beta[1]
    assert page(api, TRACKS, q="no such title")["items"] == []


def test_filters_by_state_output_and_date(api: httpx.Client, mp3: Path, receiver: Receiver) -> None:
    first, second, third = import_tracks(api, mp3, 3)
    body = {"audioId": first, "callBackUrl": receiver.url, "bitDepth": 24}
    task = assert_envelope(api.post("/api/v1/wav/generate", json=body), 200)["data"]["taskId"]
    wait_for_wav(api, task)
    converted = page(api, TRACKS, status="SUCCESS")
    assert [t["id"] for t in converted["items"]] == [first] and converted["total"] == 1
    assert converted["items"][0]["lastTask"]["status"] == "SUCCESS"
    never = page(api, TRACKS, status="NONE")
    assert {t["id"] for t in never["items"]} == {second, third}
    assert page(api, TASKS, output="pcm24")["total"] == 1
    assert page(api, TASKS, output="pcm16")["total"] == 0
    assert page(api, TASKS, status="SUCCESS", q=task[:10])["items"][0]["taskId"] == task
    assert page(api, TASKS, q=first)["total"] == 1  # by the track's id too
    assert page(api, TRACKS, since="2000-01-01", until="2000-01-01")["total"] == 0
    assert page(api, TRACKS, since="2000-01-01T00:00:00Z")["total"] == 3
    assert page(api, TRACKS, until="2999-12-31")["total"] == 3


def test_bad_cursor_and_filters_answer_in_the_envelope(api: httpx.Client, mp3: Path) -> None:
    import_tracks(api, mp3, 3)
    cursor = page(api, TRACKS, limit=1)["nextCursor"]
    assert cursor
    for path, params in [
        (TRACKS, {"cursor": "not-a-cursor"}),
        (TRACKS, {"cursor": cursor[:-3]}),
        (TASKS, {"cursor": cursor}),  # a tracks cursor is not a WAV tasks one
        (LEDGER, {"cursor": cursor}),
        (TRACKS, {"status": "DONE"}),
        (TASKS, {"output": "mp3"}),
        (LEDGER, {"reason": "gift"}),
        (TRACKS, {"since": "yesterday"}),
        (TRACKS, {"limit": 0}),
        (TRACKS, {"limit": 201}),
    ]:
        body = assert_envelope(api.get(path, params=params), 400)
        assert body["msg"], (path, params)
    assert "cursor" in assert_envelope(api.get(TRACKS, params={"cursor": "e30"}), 400)["msg"]
    assert_envelope(api.get(TRACKS, params={"q": "x" * 201}), 413)  # as every field too long


def test_another_accounts_rows_never_appear(server: Server, api: httpx.Client, mp3: Path) -> None:
    mine = import_tracks(api, mp3, 3)
    cursor = page(api, TRACKS, limit=1)["nextCursor"]
    with server.client(server.create_key()["key"]) as stranger:
        for path in (TRACKS, TASKS):
            empty = {"items": [], "total": 0, "nextCursor": None, "prevCursor": None}
            assert page(stranger, path) == empty
        assert page(stranger, TRACKS, q=mine[0])["total"] == 0
        assert page(stranger, TRACKS, cursor=cursor)["items"] == []  # a position, not a key
        assert [e["reason"] for e in page(stranger, LEDGER)["items"]] == ["grant"]


def test_the_ledger_pages_past_ten_rows(server: Server, api: httpx.Client) -> None:
    account_id = page(api, "/api/v1/account")["accountId"]
    with server.admin() as admin:  # `wavforge credits grant` is tested in test_limits
        for amount in range(1, 13):
            grant = {"amount": amount, "note": f"gift {amount}"}
            granted = admin.post(f"/api/v1/admin/accounts/{account_id}/credits", json=grant)
            assert granted.status_code == 200, granted.text
    found, (total,) = every_page(api, LEDGER, "note", limit=5)
    assert total == 13
    assert found == [f"gift {n}" for n in range(12, 0, -1)] + ["opening balance"]
    gifts = page(api, LEDGER, q="gift 1", reason="grant")
    assert [e["amount"] for e in gifts["items"]] == [12, 11, 10, 1]
    assert page(api, LEDGER, reason="charge")["total"] == 0
