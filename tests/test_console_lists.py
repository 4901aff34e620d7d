# ruff: noqa: F811
"""The console's long lists in Chromium: a thousand tracks paged and searched, bulk convert with
each row's progress in place, a failed conversion retried from its row, and the credit
history paged past its first ten rows."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

# The browser and page fixtures of the console's own tests, shared (a test's ``page``
# argument names the imported fixture, which ruff would call a redefinition).
from test_console import browser, go, page, sign_in  # noqa: F401

from conftest import Server, assert_envelope, break_stored_source
from support.receiver import Receiver

pytestmark = pytest.mark.embedded_only


def import_batches(api: httpx.Client, mp3: Path, batches: int, title: str = "Batch") -> list[str]:
    """``batches`` times 20 tracks, one request each; the tracks of batch n are titled
    "<title> nn"."""
    data = mp3.read_bytes()
    ids: list[str] = []
    for batch in range(batches):
        files = [("file", (f"b{batch}-{i}.mp3", data)) for i in range(20)]
        response = api.post(
            "/api/v1/music/import", files=files, data={"title": f"{title} {batch:02d}"}
        )
        assert response.status_code == 200, response.text
        ids += [track["id"] for track in response.json()["data"]["tracks"]]
    return ids


def open_tracks(page: Page, server: Server, key: str) -> None:
    page.goto(f"{server.url}/console")
    sign_in(page, key)
    go(page, "Tracks")


def test_a_thousand_tracks_are_paged_and_searched(server: Server, page: Page, mp3: Path) -> None:
    key = server.create_key()["key"]
    with server.client(key) as api:
        ids = import_batches(api, mp3, 50)
        listed = api.get("/api/v1/account/tracks/search", params={"limit": 150})
        newest = [row["id"] for row in assert_envelope(listed, 200)["data"]["items"]]
    assert len(ids) == 1000
    open_tracks(page, server, key)
    rows = page.get_by_test_id("tracks").locator("tbody tr")
    expect(page.get_by_test_id("track-total")).to_have_text("1000 tracks")
    expect(rows).to_have_count(50)
    first_page = rows.first.get_attribute("data-track-id")
    expect(rows.first).to_contain_text("Batch 49")  # newest first

    seen: set[str] = set()
    tops: list[str] = []
    expect(page.get_by_test_id("previous-page")).to_have_count(0)  # none before the first
    for _ in range(3):  # the next pages: 50 new rows each, none seen before
        top = rows.first.get_attribute("data-track-id") or ""
        tops.append(top)
        shown = {row.get_attribute("data-track-id") or "" for row in rows.all()}
        assert len(shown) == 50 and not shown & seen
        seen |= shown
        page.get_by_test_id("next-page").click()
        expect(rows.first).not_to_have_attribute("data-track-id", top)
    assert seen == set(newest)  # the newest 150, each once, as the API lists them
    for top in reversed(tops[1:]):  # back, page by page, to the same rows
        page.get_by_test_id("previous-page").click()
        expect(rows.first).to_have_attribute("data-track-id", top)
        expect(rows).to_have_count(50)
    page.get_by_test_id("first-page").click()
    expect(rows.first).to_have_attribute("data-track-id", first_page or "")

    page.get_by_label("Search").fill("Batch 07")
    expect(page.get_by_test_id("track-total")).to_have_text("20 tracks match")
    expect(rows).to_have_count(20)
    expect(page.get_by_test_id("next-page")).to_have_count(0)
    for title in rows.locator("th").all_inner_texts():
        assert title.startswith("Batch 07")

    page.get_by_label("Search").fill(ids[123][:13])
    expect(page.get_by_test_id("track-total")).to_have_text("1 track matches")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-track-id", ids[123])

    page.get_by_label("Search").fill("")
    page.get_by_label("Latest WAV").select_option(label="Conversion failed")
    expect(page.get_by_test_id("track-total")).to_have_text("0 tracks match")


def test_bulk_convert_shows_each_rows_progress_in_place(
    server: Server, page: Page, mp3: Path, tmp_path: Path
) -> None:
    issued = server.create_key(credits=20)
    with server.client(issued["key"]) as api:
        import_batches(api, mp3, 1, title="Bulk")
    open_tracks(page, server, issued["key"])
    rows = page.get_by_test_id("tracks").locator("tbody tr")
    expect(rows).to_have_count(20)
    chosen = [rows.nth(i) for i in range(5)]
    for row in chosen:
        row.get_by_role("checkbox").check()
    page.get_by_label("WAV format").select_option(label="24-bit PCM")
    page.get_by_test_id("bulk-convert").click()
    expect(page.get_by_test_id("bulk-result")).to_have_text("Started 5 conversions.")
    assert page.url.endswith("/console/tracks")  # converted without leaving the page
    for row in chosen:
        expect(row.get_by_test_id("track-wav")).to_contain_text("Ready", timeout=60_000)
    for row in (rows.nth(i) for i in range(5, 20)):
        expect(row.get_by_role("button", name=re.compile("^Convert "))).to_be_visible()

    # Again, with the whole page selected: five already have this WAV, shown on their rows.
    page.get_by_label("Select every track on this page").check()
    page.get_by_test_id("bulk-convert").click()
    expect(page.get_by_test_id("bulk-result")).to_have_text(
        "Started 15 conversions; 5 not started (see their rows)."
    )
    notes = page.get_by_test_id("track-note")
    expect(notes).to_have_count(5)
    expect(notes.first).to_have_text("Already has a WAV in this format.")
    expect(page.get_by_test_id("track-wav").filter(has_text="Ready")).to_have_count(
        20, timeout=90_000
    )

    # The WAV tasks page: every WAV of the page selected and downloaded as one ZIP.
    go(page, "WAV tasks")
    expect(page.get_by_test_id("task-total")).to_have_text("20 WAV tasks")
    page.get_by_label("Format").select_option(label="16-bit PCM")  # all were asked as 24-bit
    expect(page.get_by_test_id("task-total")).to_have_text("0 WAV tasks match")
    page.get_by_label("Format").select_option(label="24-bit PCM")
    expect(page.get_by_test_id("task-total")).to_have_text("20 WAV tasks match")
    expect(page.get_by_test_id("tasks").locator("tbody tr")).to_have_count(20)
    page.get_by_label("Select every WAV on this page").check()
    with page.expect_download() as download:
        page.get_by_test_id("download-zip").click()
    saved = tmp_path / "wavs.zip"
    download.value.save_as(saved)
    with zipfile.ZipFile(saved) as archive:
        entries = archive.infolist()
        assert len(entries) == 20 and archive.testzip() is None
        assert {entry.compress_type for entry in entries} == {zipfile.ZIP_STORED}
        assert all(archive.read(entry)[:4] == b"RIFF" for entry in entries)

    # The credit history: an opening grant and 20 charges, ten to a page.
    go(page, "Overview")
    expect(page.get_by_test_id("ledger-total")).to_have_text("21 entries")
    ledger_rows = page.get_by_test_id("ledger").locator("tbody tr")
    expect(ledger_rows).to_have_count(10)
    top = ledger_rows.first.inner_text()
    page.locator("#ledger").get_by_test_id("next-page").click()
    expect(ledger_rows.first).not_to_have_text(top)
    expect(ledger_rows).to_have_count(10)
    page.locator("#ledger").get_by_test_id("next-page").click()
    expect(ledger_rows).to_have_count(1)
    expect(ledger_rows.first).to_contain_text("opening balance")


def test_a_failed_conversion_shows_on_its_row_with_a_retry(
    server: Server, page: Page, mp3: Path, tmp_path: Path, receiver: Receiver
) -> None:
    issued = server.create_key(credits=10)
    with server.client(issued["key"]) as api:
        (track_id,) = import_batches(api, mp3, 1, title="Broken")[:1]
        break_stored_source(server, track_id, tmp_path)
        body = {"audioId": track_id, "callBackUrl": receiver.url}
        first = assert_envelope(api.post("/api/v1/wav/generate", json=body), 200)["data"]
    open_tracks(page, server, issued["key"])
    row = page.locator(f"tr[data-track-id='{track_id}']")
    expect(row.get_by_test_id("track-error")).to_be_visible(timeout=60_000)
    expect(row.get_by_role("link")).to_have_attribute("href", f"/console/tasks/{first['taskId']}")
    row.get_by_role("button", name="Retry converting Broken 00").click()
    expect(row.get_by_role("link")).not_to_have_attribute(
        "href", f"/console/tasks/{first['taskId']}"
    )
    expect(row.get_by_test_id("track-error")).to_be_visible(timeout=60_000)  # fails again
    with server.client(issued["key"]) as api:  # each failure refunded its charge
        refunds = api.get("/api/v1/account/ledger/search", params={"reason": "refund"})
        assert assert_envelope(refunds, 200)["data"]["total"] == 2
