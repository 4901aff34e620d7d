"""The console's layout and accessibility, in Chromium, on every page, phone and desktop,
light and dark.

Each page is checked for horizontal overflow and by axe-core (no serious or critical
violation), and photographed to ``$WAVFORGE_ARTIFACTS/console-layout`` (default
``artifacts/console-layout``, not committed) for a person to look at. axe is vendored under
``tests/vendor/`` and injected by the test; the server never serves it. The other tests hold
what a new user meets first: no "Sign out" while signed out, errors shown in the page, the
maintenance banner, the warning before revoking the tab's own key, local times.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Dialog,
    Page,
    expect,
    sync_playwright,
)

from test_console import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, sign_in

from audiogen import make_mp3
from conftest import Server, assert_envelope, import_file, wait_for_wav, wavforge
from support.receiver import Receiver

AXE = Path(__file__).parent / "vendor" / "axe-4.10.3.min.js"
SHOTS = ARTIFACTS / "console-layout"
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
THEMES = ("light", "dark")
SERIOUS = ("serious", "critical")

pytestmark = pytest.mark.embedded_only

NAV_SCROLLS = """() => {
    const list = document.querySelector("#nav ul");
    const items = Array.from(list.children).filter((item) => item.offsetParent !== null);
    const tops = new Set(items.map((item) => item.offsetTop));
    return tops.size > 1 || list.scrollWidth > list.parentElement.clientWidth;
}"""
# Tables scroll sideways inside their card when they must; at desktop width none should.
TABLES_SCROLL = """() => Array.from(document.querySelectorAll(".table-wrap"))
    .filter((wrap) => wrap.offsetParent !== null && wrap.scrollWidth > wrap.clientWidth + 1)
    .map((wrap) => (wrap.querySelector("table") || wrap).dataset.testid || "a table")"""
AXE_RUN = """async (serious) => {
    const result = await axe.run(document, { resultTypes: ["violations"] });
    return result.violations
        .filter((violation) => serious.includes(violation.impact))
        .map((violation) => ({
            id: violation.id,
            impact: violation.impact,
            help: violation.help,
            nodes: violation.nodes.slice(0, 4).map((node) => node.target.join(" ")),
        }));
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def site(server: Server) -> Iterator[dict[str, Any]]:
    """An admin account with a few tracks (one with a long name), a converted task with a
    delivered callback, a revoked key, and a second, ordinary account."""
    made = wavforge(
        "keys", "create", "--name", "Grace", "--credits", "40", "--admin", "--json",
        env=server.env,
    )  # fmt: skip
    admin = json.loads(made.stdout)
    folder = Path(server.data_dir).parent / "layout-audio"
    folder.mkdir(exist_ok=True)
    receiver = Receiver()
    with server.client(admin["key"]) as api:
        tracks = [
            import_file(api, make_mp3(folder / f"{name}.mp3", 3.0), title=name)["tracks"][0]["id"]
            for name in (
                "Morning Raga",
                "A rather long track title that goes on and on, remastered 2024 (live)",
            )
        ]
        answer = api.post(
            "/api/v1/wav/generate", json={"audioId": tracks[0], "callBackUrl": receiver.url}
        )
        task_id = assert_envelope(answer, 200)["data"]["taskId"]
        wait_for_wav(api, task_id)
        spare = assert_envelope(api.post("/api/v1/account/keys", json={"name": "old"}), 200)
        assert_envelope(api.post(f"/api/v1/account/keys/{spare['data']['keyId']}/revoke"), 200)
    plain = server.create_key(credits=5, name="Linus")
    yield {"admin": admin, "plain": plain, "task_id": task_id, "tracks": tracks}
    receiver.close()


def new_context(browser: Browser, viewport: str = "desktop") -> BrowserContext:
    return browser.new_context(
        viewport=VIEWPORTS[viewport], timezone_id="America/New_York", locale="en-US"
    )


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    opened = new_context(browser)
    yield opened
    opened.close()


def watch(page: Page) -> list[str]:
    """The page's uncaught errors and refused loads (a CSP refusal shows as one), but for the
    404 the not-found page asks for on purpose."""
    problems: list[str] = []

    def logged(message: ConsoleMessage) -> None:
        if message.type == "error" and "404" not in message.text:
            problems.append(message.text)

    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", logged)
    return problems


def settle(page: Page) -> None:
    """Wait until the page's fragment is in and nothing more is loading."""
    if page.locator("#sign-in").is_hidden():
        expect(page.locator("#content")).to_have_attribute("aria-busy", "false")
        expect(page.locator("#content h1").first).to_be_visible()
    page.wait_for_load_state("networkidle")
    page.evaluate("document.fonts.ready")


def overflow(page: Page) -> int:
    """By how many pixels the page is wider than the window (0: it fits)."""
    return int(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))


def axe(page: Page) -> list[dict[str, Any]]:
    return list(page.evaluate(AXE_RUN, list(SERIOUS)))


def check(page: Page, name: str, found: dict[str, Any]) -> None:
    settle(page)
    if (wider := overflow(page)) > 0:
        found.setdefault("overflow", []).append(f"{name}: {wider} px too wide")
    if page.locator("#nav").is_visible() and page.evaluate(NAV_SCROLLS):
        found.setdefault("overflow", []).append(f"{name}: the pages' names do not fit one line")
    if name.startswith("desktop") and (scrolling := page.evaluate(TABLES_SCROLL)):
        found.setdefault("overflow", []).append(f"{name}: {scrolling} scroll sideways")
    if violations := axe(page):
        found.setdefault("axe", []).append({name: violations})
    page.screenshot(path=SHOTS / f"{name}.png", full_page=True)


def test_every_page_fits_a_phone_and_passes_axe(
    browser: Browser, server: Server, site: dict[str, Any]
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    print(f"\nconsole screenshots in {SHOTS}")
    pages = {
        "overview": "/console",
        "tracks": "/console/tracks",
        "tasks": "/console/tasks",
        "task": f"/console/tasks/{site['task_id']}",
        "keys": "/console/keys",
        "admin": "/console/admin",
        "account": f"/console/admin/accounts/{site['admin']['account_id']}",
    }
    found: dict[str, Any] = {}
    for viewport in VIEWPORTS:
        context = new_context(browser, viewport)
        # A <script> tag added by the test would be refused by the console's CSP (scripts from
        # 'self' only), which stays on: axe comes in as an init script, as an extension would.
        context.add_init_script(path=AXE)
        page = context.new_page()
        problems = watch(page)
        for theme in THEMES:
            page.emulate_media(color_scheme=theme)
            page.goto(f"{server.url}/console")
            if theme == THEMES[0]:
                check(page, f"{viewport}-{theme}-sign-in", found)
                sign_in(page, site["admin"]["key"])
            for name, path in pages.items():
                page.goto(f"{server.url}{path}")
                check(page, f"{viewport}-{theme}-{name}", found)
            page.goto(f"{server.url}/console/tasks/no-such-task")
            check(page, f"{viewport}-{theme}-not-found", found)
        context.close()
        if problems:
            found.setdefault("errors", []).extend(problems)
    assert not found, json.dumps(found, indent=1)


def test_signed_out_shows_no_sign_out(context: BrowserContext, server: Server) -> None:
    page = context.new_page()
    page.goto(f"{server.url}/console")
    expect(page.get_by_role("heading", name="Sign in to the console")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_hidden()
    expect(page.get_by_role("navigation", name="Console")).to_be_hidden()


def test_errors_show_in_the_page_not_as_a_toast(
    context: BrowserContext, server: Server, site: dict[str, Any]
) -> None:
    page = context.new_page()
    page.goto(f"{server.url}/console/admin")
    sign_in(page, site["plain"]["key"])
    panel = page.locator("#content [role=alert]")
    expect(panel).to_contain_text("administrator")
    expect(page.get_by_role("link", name="Back to the overview")).to_be_visible()
    expect(page.locator("#toasts .toast")).to_have_count(0)
    page.goto(f"{server.url}/console/tasks/no-such-task")
    expect(page.locator("#content [role=alert]")).to_contain_text("not found")


def test_maintenance_shows_on_every_page_and_disables_new_work(
    context: BrowserContext, server: Server, site: dict[str, Any]
) -> None:
    page = context.new_page()
    page.goto(f"{server.url}/console/tracks")
    sign_in(page, site["admin"]["key"])
    banner = page.get_by_test_id("maintenance-banner")
    expect(page.locator("tr", has_text="Morning Raga")).to_be_visible()
    expect(banner).to_be_hidden()
    page.on("dialog", lambda dialog: dialog.accept())
    with httpx.Client(base_url=server.url) as api:
        switch = {"Authorization": f"Bearer {site['admin']['key']}"}
        try:
            page.goto(f"{server.url}/console/admin")
            page.get_by_role("button", name="Turn maintenance on").click()
            expect(banner).to_be_visible()
            expect(banner).to_contain_text("Maintenance mode is on")
            page.goto(f"{server.url}/console/tracks")
            expect(banner).to_be_visible()
            convert = page.get_by_role("button", name="Convert A rather long track title")
            expect(convert).to_be_disabled()
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=SHOTS / "desktop-light-tracks-maintenance.png")
            expect(page.get_by_role("button", name="Import")).to_be_disabled()
            expect(page.get_by_label("Choose files…")).to_be_disabled()
            page.goto(f"{server.url}/console/admin")
            page.get_by_role("button", name="Turn maintenance off").click()
            expect(banner).to_be_hidden()
            page.goto(f"{server.url}/console/tracks")
            expect(convert).to_be_enabled()
        finally:
            api.put("/api/v1/admin/maintenance", json={"enabled": False}, headers=switch)


def test_keys_page_warns_before_revoking_this_tab_and_folds_revoked_keys(
    context: BrowserContext, server: Server, site: dict[str, Any]
) -> None:
    own = server.create_key(credits=1, name="Tab owner")
    page = context.new_page()
    page.goto(f"{server.url}/console/keys")
    sign_in(page, own["key"])
    asked: list[str] = []

    def answer(dialog: Dialog) -> None:
        asked.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", answer)
    page.get_by_role("button", name="Revoke Tab owner").click()
    expect(page.get_by_role("button", name="Revoke Tab owner")).to_be_visible()
    assert asked and "signs this tab out" in asked[0], asked

    # Another key, revoked: it shows under "1 revoked key", which is folded away next time.
    page.remove_listener("dialog", answer)
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_label("New key named").fill("spare")
    page.get_by_role("button", name="Create key").click()
    page.get_by_role("button", name="Revoke spare").click()
    folded = page.locator("details", has_text="1 revoked key")
    expect(folded.locator("tr.revoked", has_text="spare")).to_be_visible()
    expect(page.get_by_test_id("keys").locator("tr", has_text="spare")).to_have_count(0)
    page.reload()
    expect(folded).to_be_visible()
    expect(folded.locator("tr", has_text="spare")).to_be_hidden()
    folded.locator("summary").click()
    expect(folded.locator("tr", has_text="spare")).to_be_visible()


def test_toasts_can_be_dismissed_and_let_clicks_through(
    context: BrowserContext, server: Server, site: dict[str, Any]
) -> None:
    page = context.new_page()
    page.goto(f"{server.url}/console/keys")
    sign_in(page, site["admin"]["key"])
    page.get_by_role("button", name="Copy").click()  # no clipboard permission: a warning
    toast = page.locator("#toasts .toast")
    expect(toast).to_have_count(1)
    assert page.evaluate("getComputedStyle(document.querySelector('#toasts')).pointerEvents") == (
        "none"
    )
    toast.get_by_role("button", name="Dismiss").click()
    expect(toast).to_have_count(0)


def test_times_show_in_the_browsers_time_zone(
    context: BrowserContext, server: Server, site: dict[str, Any]
) -> None:
    page = context.new_page()
    page.goto(f"{server.url}/console/tasks")
    sign_in(page, site["admin"]["key"])
    shown = page.locator(f"tr[data-task-id='{site['task_id']}'] time").first
    expect(shown).not_to_contain_text("UTC")
    assert "UTC" in (shown.get_attribute("title") or "")
