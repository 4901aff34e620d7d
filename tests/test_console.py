"""The web console, driven in Debian's Chromium by Playwright, against a real server.

One journey covers what a person does: sign in, create a key, upload an MP3 by dropping it,
convert it, watch it finish without reloading, play it, download the WAV, use the admin
page, and be signed out when the key is revoked. Screenshots of every page go to
``$WAVFORGE_ARTIFACTS/console`` (default ``artifacts/console``, not committed).
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import soundfile
from playwright.sync_api import Browser, Page, expect, sync_playwright

from audiogen import make_mp3
from conftest import Server, assert_envelope, wait_until, wavforge
from support.processes import converters, signal_all

CHROMIUM = os.environ.get("WAVFORGE_TEST_CHROMIUM", "/usr/bin/chromium")
# As root in a closed network: no sandbox, and none of Chromium's calls home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(
    os.environ.get("WAVFORGE_ARTIFACTS", Path(__file__).resolve().parents[1] / "artifacts")
)

# The console's pages call the same core as the API, which is tested in both modes.
pytestmark = pytest.mark.embedded_only


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Module-scoped on purpose: while Playwright's sync API is open, the main thread has a
    running event loop (``asyncio.run`` refuses to start) and extra threads (the engine then
    declines to split a decode), which later tests must not inherit."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.on("dialog", lambda dialog: dialog.accept())  # hx-confirm's questions
    yield opened
    context.close()
    assert not errors, f"the page raised: {errors}"


class Shots:
    """Full-page screenshots, named by step and mode, for a person to look at."""

    def __init__(self, page: Page, mode: str) -> None:
        self.page = page
        self.folder = ARTIFACTS / "console"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.mode = mode

    def __call__(self, name: str) -> None:
        self.page.screenshot(path=self.folder / f"{self.mode}-{name}.png", full_page=True)


def admin_key(server: Server, credits: int) -> dict[str, Any]:
    made = wavforge(
        "keys", "create", "--name", "Ada", "--credits", str(credits), "--admin", "--json",
        env=server.env,
    )  # fmt: skip
    return dict(json.loads(made.stdout))


def sign_in(page: Page, key: str) -> None:
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()


def seconds(clock: str) -> float:
    """The player's "m:ss.s" display in seconds."""
    minutes, rest = clock.split(":")
    return int(minutes) * 60 + float(rest)


def go(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="Console").get_by_role("link", name=name).click()


def drop_file(page: Page, path: Path, mime: str = "audio/mpeg") -> None:
    """A real drop event on the drop zone, carrying the file as a browser would."""
    transfer = page.evaluate_handle(
        """([name, data, mime]) => {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: mime }));
            return transfer;
        }""",
        [path.name, base64.b64encode(path.read_bytes()).decode(), mime],
    )
    page.dispatch_event("[data-dropzone]", "dragenter", {"dataTransfer": transfer})
    page.dispatch_event("[data-dropzone]", "drop", {"dataTransfer": transfer})


def test_console_journey(server: Server, page: Page, tmp_path: Path) -> None:
    shot = Shots(page, server.deployment.mode)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    admin = admin_key(server, credits=50)

    # Sign in: a wrong key is refused in place; the right one opens the overview.
    page.goto(f"{server.url}/console")
    shot("01-sign-in")
    sign_in(page, "wf_not-a-key")
    expect(page.locator("#sign-in-error")).to_have_text("That key was not accepted.")
    sign_in(page, admin["key"])
    expect(page.get_by_test_id("credits")).to_have_text("50")
    shot("02-overview")

    # Create a key: shown once, and it works against the API.
    go(page, "Keys and webhooks")
    page.get_by_label("New key named").fill("laptop")
    page.get_by_role("button", name="Create key").click()
    issued = page.get_by_label("The new API key").input_value()
    assert issued.startswith("wf_") and issued != admin["key"]
    with server.client(issued) as laptop:
        assert assert_envelope(laptop.get("/api/v1/generate/credit"), 200)["data"] == 50
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_label("Current webhook secret")).to_have_value(admin["webhook_secret"])
    page.get_by_role("button", name="Hide").click()
    shot("03-keys")

    # Continue as the new key, from a fresh sign-in (the tab stays on its page).
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Keys and webhooks")).to_have_count(0)
    sign_in(page, issued)
    expect(page.locator("tr", has_text="laptop").get_by_text("this tab")).to_be_visible()

    # Upload an MP3 by dropping it on the tracks page.
    song = make_mp3(tmp_path / "Evening Song.mp3", 6.0, title="Evening Song")
    go(page, "Tracks")
    drop_file(page, song)
    row = page.locator("tr", has_text="Evening Song")
    expect(row).to_be_visible()
    shot("04-tracks")

    # Convert it to 24-bit and watch it finish on its page, without a reload. The server's
    # converter processes are frozen meanwhile, so the page is seen waiting first.
    assert server.process is not None
    frozen = converters(server.process.pid)
    signal_all(frozen, signal.SIGSTOP)
    try:
        page.get_by_label("WAV format").select_option(label="24-bit PCM")
        page.get_by_label("Measure loudness").check()
        row.get_by_role("button", name="Convert Evening Song to WAV").click()
        page.wait_for_url("**/console/tasks/*")
        page.evaluate("window.stillThisPage = true")
        expect(page.get_by_test_id("task-status")).to_have_text(re.compile("Queued|Converting"))
        shot("05-task-waiting")
    finally:
        signal_all(frozen, signal.SIGCONT)
    expect(page.get_by_test_id("task-status")).to_have_text("Ready", timeout=60_000)
    assert page.evaluate("window.stillThisPage") is True
    expect(page.get_by_test_id("analysis")).to_contain_text("24-bit")
    for shown in ("Integrated loudness", "LUFS", "True peak", "dBTP", "Source lossy"):
        expect(page.get_by_test_id("analysis")).to_contain_text(shown)
    task_id = page.url.rsplit("/", 1)[-1]

    # Play the WAV: the player loads it and time moves on.
    wav_player = page.locator("[data-player][data-label=wav]")
    expect(wav_player).to_have_attribute("data-ready", "true", timeout=30_000)
    page.get_by_role("button", name="Play the WAV").click()
    expect(wav_player).to_have_attribute("data-playing", "true")
    elapsed = wav_player.locator("[data-time]")  # the player's clock, as the page shows it
    wait_until(lambda: seconds(elapsed.inner_text()) > 0.3)
    expect(page.get_by_role("button", name="Play the WAV")).to_have_text("Pause")
    shot("06-task")
    page.get_by_role("button", name="Play the WAV").click()  # pause

    # Download the WAV and check it is one: 24-bit, 6 seconds, the task's analysis.
    with page.expect_download() as download_info:
        page.get_by_test_id("download-wav").click()
    target = tmp_path / "downloaded.wav"
    download_info.value.save_as(target)
    info = soundfile.info(str(target))
    assert (info.subtype, info.channels, info.samplerate) == ("PCM_24", 2, 44100)
    assert info.frames == 6 * 44100
    assert target.read_bytes()[:4] == b"RIFF" and target.read_bytes()[8:12] == b"WAVE"

    go(page, "WAV tasks")
    expect(page.locator(f"tr[data-task-id='{task_id}']")).to_contain_text("Ready")
    shot("07-tasks")
    go(page, "Overview")
    expect(page.get_by_test_id("credits")).not_to_have_text("50")
    shot("08-overview-after")

    # Administration: grant credits, and switch maintenance on and off again.
    go(page, "Administration")
    account_row = page.locator(f"tr[data-account-id='{admin['account_id']}']")
    balance = int(account_row.get_by_test_id("balance").inner_text())
    account_row.get_by_label("Credits to grant to Ada").fill("25")
    account_row.get_by_role("button", name="Grant").click()
    expect(account_row.get_by_test_id("balance")).to_have_text(str(balance + 25))
    page.get_by_role("button", name="Turn maintenance on").click()
    expect(page.get_by_test_id("maintenance-state")).to_have_text("on")
    shot("09-admin")
    with server.client(issued) as laptop:
        assert_envelope(laptop.post("/api/v1/music/import", json={"urls": ["x"]}), 455)
    page.get_by_role("button", name="Turn maintenance off").click()
    expect(page.get_by_test_id("maintenance-state")).to_have_text("off")

    # On a phone the pages stack into one column.
    page.set_viewport_size({"width": 390, "height": 844})
    go(page, "Tracks")
    expect(row).to_be_visible()
    shot("10-tracks-phone")
    page.set_viewport_size({"width": 1280, "height": 900})

    # Revoking the tab's own key signs the tab out at its next request.
    go(page, "Keys and webhooks")
    page.locator("tr", has_text="laptop").get_by_role("button", name="Revoke laptop").click()
    expect(page.locator("tr.revoked", has_text="laptop")).to_be_visible()
    page.get_by_role("button", name="Rotate").click()
    expect(page.locator("#sign-in-error")).to_contain_text("not accepted")

    # The key never travelled in a URL, and nothing but the tab's session storage held it.
    assert not [url for url in requested if issued in url or admin["key"] in url]
    assert page.context.cookies() == []
    assert page.evaluate("window.localStorage.length") == 0


def test_pages_are_shells_and_fragments_need_a_key(server: Server) -> None:
    with httpx.Client(base_url=server.url) as anonymous:
        shell = anonymous.get("/console/keys")
        assert shell.status_code == 200 and "API key" in shell.text
        assert "script-src 'self'" in shell.headers["content-security-policy"]
        assert shell.headers["cache-control"] == "no-store"
        assert_envelope(anonymous.get("/console/partials/keys"), 401)
        assert_envelope(anonymous.post("/console/partials/keys", data={"name": "x"}), 401)
        script = anonymous.get("/console/static/vendor/htmx-2.0.11.min.js")
        assert script.status_code == 200 and "javascript" in script.headers["content-type"]


def test_fragments_refuse_what_the_api_refuses(server: Server, api: httpx.Client) -> None:
    assert_envelope(api.get("/console/partials/admin"), 403)
    assert_envelope(api.get("/console/partials/tasks/no-such-task"), 404)
    assert_envelope(api.post("/console/partials/tracks/no-such-track/convert"), 404)
    bad = api.post("/console/partials/tracks/x/convert", data={"output": "mp3"})
    assert "unknown output" in assert_envelope(bad, 400)["msg"]


def test_the_api_reference_works_with_no_way_out(server: Server, page: Page) -> None:
    """``/docs`` renders both dialects' operations with every request off this machine
    refused, and ``/`` leads to the console."""
    local = f"{server.url}/"
    outside: list[str] = []

    def only_local(route: Any) -> None:
        url = route.request.url
        if url.startswith(local):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    page.route("**/*", only_local)
    page.goto(f"{server.url}/docs")
    expect(page.get_by_text("/api/v1/wav/generate").first).to_be_visible(timeout=15_000)
    expect(page.get_by_text("/api/generate/submit").first).to_be_visible()
    assert outside == []
    page.goto(server.url)
    assert page.url == f"{server.url}/console"
    home = httpx.get(server.url, follow_redirects=False)
    assert home.status_code == 307 and home.headers["location"] == "/console"
