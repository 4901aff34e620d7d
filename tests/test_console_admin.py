# ruff: noqa: F811
"""The console's drill-down into one account, in Chromium: from the accounts table to the
account's keys, usage and paged credit history; grants, key resets and revocations made there;
an admin account created with the checkbox; admin rights given and taken, and the last admin's
refused in the page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Dialog, Page, expect

# The browser and page fixtures of the console's own tests, shared (a test's ``page``
# argument names the imported fixture, which ruff would call a redefinition).
from test_console import admin_key, browser, go, page, sign_in  # noqa: F401

from conftest import Server, assert_envelope, wait_for_wav
from support.receiver import Receiver

pytestmark = pytest.mark.embedded_only

GRANTS = 10  # with the opening grant and one charge, a second page of the credit history


def customer_with_history(server: Server, admin: dict[str, Any], mp3: Path, url: str) -> Any:
    """An account with one import of two tracks, one of them converted, a revoked spare key
    and twelve ledger rows."""
    customer = server.create_key(credits=20, name="Customer Cleo")
    with server.client(customer["key"]) as api:
        pair = [("file", (name, mp3.read_bytes())) for name in ("a.mp3", "b.mp3")]
        imported = assert_envelope(api.post("/api/v1/music/import", files=pair), 200)
        track = imported["data"]["tracks"][0]["id"]
        asked = api.post("/api/v1/wav/generate", json={"audioId": track, "callBackUrl": url})
        wait_for_wav(api, assert_envelope(asked, 200)["data"]["taskId"])
        spare = assert_envelope(api.post("/api/v1/account/keys", json={"name": "spare"}), 200)
        assert_envelope(api.post(f"/api/v1/account/keys/{spare['data']['keyId']}/revoke"), 200)
    with server.client(admin["key"]) as root:
        for _ in range(GRANTS):
            path = f"/api/v1/admin/accounts/{customer['account_id']}/credits"
            assert_envelope(root.post(path, json={"amount": 1}), 200)
    return customer


def cells(page: Page, figure: str) -> list[str]:
    """The usage table's row for ``figure``: its all-time and last-30-days values."""
    return [
        cell.strip()
        for cell in page.get_by_test_id(f"usage-{figure}").locator("td").all_inner_texts()
    ]


def open_account(page: Page, server: Server, key: str, account_id: str) -> None:
    """Sign in, open the Administration page and follow the account's link."""
    page.goto(f"{server.url}/console")
    sign_in(page, key)
    go(page, "Administration")
    page.locator(f"tr[data-account-id='{account_id}'] th a").click()
    page.wait_for_url(f"**/console/admin/accounts/{account_id}")


def test_an_operator_opens_an_account_from_the_accounts_table(
    server: Server, page: Page, mp3: Path, receiver: Receiver
) -> None:
    admin = admin_key(server, credits=0)
    customer = customer_with_history(server, admin, mp3, receiver.url)
    open_account(page, server, admin["key"], customer["account_id"])

    expect(page.get_by_test_id("account-name")).to_have_text("Customer Cleo")
    expect(page.get_by_test_id("admin-badge")).to_have_count(0)
    expect(page.get_by_test_id("balance")).to_have_text(str(20 - 1 + GRANTS))
    keys = page.get_by_test_id("keys")
    expect(keys.locator("tbody tr")).to_have_count(1)
    expect(keys.locator("tbody tr")).to_contain_text(customer["key"][:10])
    folded = page.locator("details", has_text="1 revoked key")
    expect(folded.locator("tr.revoked", has_text="spare")).to_be_hidden()

    assert cells(page, "imports") == ["1", "1"]
    assert cells(page, "tracks") == ["2", "2"]
    assert cells(page, "SUCCESS") == ["1", "1"]
    assert cells(page, "GENERATE_WAV_FAILED") == ["0", "0"]
    expect(page.get_by_test_id("usage-GENERATE_WAV_FAILED")).to_contain_text("Conversion failed")
    assert cells(page, "credits") == ["1", "1"]
    assert cells(page, "audio") == ["0:04 (4.000 s)", "0:04 (4.000 s)"]

    # The credit history pages as the account's own does; another account's tasks are not
    # links (the operator's task pages are the operator's own).
    ledger = page.get_by_test_id("ledger")
    expect(page.get_by_test_id("ledger-total")).to_have_text(f"{GRANTS + 2} entries")
    expect(ledger.locator("tbody tr")).to_have_count(10)
    page.get_by_test_id("next-page").click()
    expect(ledger.locator("tbody tr")).to_have_count(2)
    expect(ledger.locator("tbody tr").first).to_contain_text("charge")
    expect(ledger.get_by_role("link")).to_have_count(0)

    # A grant made here comes back to this page.
    page.get_by_label("Credits to grant to Customer Cleo").fill("5")
    page.get_by_role("button", name="Grant").click()
    expect(page.get_by_test_id("balance")).to_have_text(str(20 - 1 + GRANTS + 5))
    expect(page.get_by_test_id("ledger-total")).to_have_text(f"{GRANTS + 3} entries")

    # Reset the key: the new one is shown once and works; then revoke it.
    page.get_by_role("button", name="Reset Customer Cleo").click()
    replaced = page.get_by_label("The new API key").input_value()
    with server.client(customer["key"]) as old, server.client(replaced) as new:
        assert_envelope(old.get("/api/v1/generate/credit"), 401)
        assert assert_envelope(new.get("/api/v1/generate/credit"), 200)["data"] == 34
    page.get_by_role("button", name="Revoke Customer Cleo").click()
    expect(page.locator("details[open]", has_text="3 revoked keys")).to_be_visible()
    expect(page.get_by_text("No working key")).to_be_visible()

    # Admin rights, given and taken: they hold from the account's next request.
    page.get_by_role("button", name="Make administrator").click()
    expect(page.get_by_test_id("admin-badge")).to_be_visible()
    with server.client(admin["key"]) as root:
        shown = root.get(f"/api/v1/admin/accounts/{customer['account_id']}")
        assert assert_envelope(shown, 200)["data"]["admin"] is True
    page.get_by_role("button", name="Remove administrator rights").click()
    expect(page.get_by_test_id("admin-badge")).to_have_count(0)
    expect(page.get_by_role("status").filter(has_text="no longer an administrator")).to_be_visible()


def test_an_admin_account_is_made_with_the_checkbox_and_the_last_admin_stays(
    own_server: Server, page: Page
) -> None:
    own_server.start()
    operator = admin_key(own_server, credits=0)  # named "Ada"; the server's only admin
    asked: list[str] = []

    def note(dialog: Dialog) -> None:
        asked.append(dialog.message)  # the page fixture accepts it

    page.on("dialog", note)
    page.goto(f"{own_server.url}/console/admin")
    sign_in(page, operator["key"])
    page.get_by_label("Name", exact=True).fill("Deputy")
    page.get_by_label("Administrator", exact=True).check()
    page.get_by_role("button", name="Create account and key").click()
    deputy_key = page.get_by_label("The new API key").input_value()
    with own_server.client(deputy_key) as deputy:
        listed = assert_envelope(deputy.get("/api/v1/admin/accounts"), 200)["data"]
    deputy_id = next(row["accountId"] for row in listed if row["name"] == "Deputy")
    assert [row["name"] for row in listed if row["admin"]] == ["Ada", "Deputy"]
    expect(
        page.locator(f"tr[data-account-id='{deputy_id}'] .badge", has_text="admin")
    ).to_be_visible()

    # The accounts table's grant form still answers with the table.
    row = page.locator(f"tr[data-account-id='{deputy_id}']")
    row.get_by_label("Credits to grant to Deputy").fill("7")
    row.get_by_role("button", name="Grant").click()
    expect(row.get_by_test_id("balance")).to_have_text("7")
    expect(row).to_have_class("flash")

    # The deputy's rights go; then the operator's own cannot: it is the last admin.
    page.locator(f"tr[data-account-id='{deputy_id}'] th a").click()
    page.get_by_role("button", name="Remove administrator rights").click()
    expect(page.get_by_test_id("admin-badge")).to_have_count(0)
    page.get_by_role("link", name="Administration").first.click()
    page.locator(f"tr[data-account-id='{operator['account_id']}'] th a").click()
    page.get_by_role("button", name="Remove administrator rights").click()
    refused = page.get_by_test_id("refused")
    expect(refused).to_have_attribute("role", "alert")
    expect(refused).to_contain_text("last admin account with a working key")
    expect(page.get_by_test_id("admin-badge")).to_be_visible()
    expect(page.locator("#toasts .toast")).to_have_count(0)
    assert "This is your own account" in asked[-1], asked
    with own_server.client(operator["key"]) as root:
        assert_envelope(root.get("/api/v1/admin/accounts"), 200)

    # An unknown account, and a key that is not an admin's, meet the console's error page.
    page.goto(f"{own_server.url}/console/admin/accounts/acct_nobody")
    expect(page.locator("#content [role=alert]")).to_contain_text("not found")
    with httpx.Client(base_url=own_server.url) as anonymous:
        shell = anonymous.get(f"/console/admin/accounts/{deputy_id}")
        assert shell.status_code == 200 and "API key" in shell.text
        assert_envelope(anonymous.get(f"/console/partials/admin/accounts/{deputy_id}"), 401)
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, deputy_key)
    expect(page.locator("#content [role=alert]")).to_contain_text("administrator")
