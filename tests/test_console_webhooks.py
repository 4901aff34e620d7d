"""The webhook portal in the console, driven in Chromium against a real server and a real
receiver: send a test event, watch its try appear, resend it and see the second try."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect
from standardwebhooks.webhooks import Webhook

from test_console import browser, page, sign_in  # noqa: F401 (the journey's fixtures)

from conftest import Server
from support.receiver import Receiver

# The portal is the console's, over the same core as the API, which is tested in both modes.
pytestmark = pytest.mark.embedded_only


def test_send_a_test_event_see_its_try_and_resend_it(
    server: Server,
    page: Page,  # noqa: F811 (the fixture imported above)
) -> None:
    receiver = Receiver([(200, {"X-Receipt": "r-7"}, b"<b>thanks</b>")])
    try:
        account = server.create_key()
        page.goto(f"{server.url}/console/keys")
        sign_in(page, account["key"])
        portal = page.locator("#webhook-portal")
        expect(portal.get_by_role("heading", name="Webhook deliveries")).to_be_visible()

        page.get_by_label("Send a test event to").fill(receiver.url)
        page.get_by_role("button", name="Send test event").click()
        (call,) = receiver.wait_for(1)
        webhook_id = call["headers"]["webhook-id"]
        body = Webhook(account["webhook_secret"]).verify(call["raw"], call["headers"])
        assert body["type"] == "test"

        detail = page.locator("#webhook-detail")
        expect(detail).to_have_attribute("data-webhook-id", webhook_id)
        tries = detail.get_by_test_id("attempts").locator("tbody tr")
        expect(tries).to_have_count(1)
        expect(tries.first).to_contain_text("HTTP 200")
        expect(tries.first).to_contain_text("webhook-signature: v1,****")
        expect(tries.first).to_contain_text("X-Receipt: r-7", ignore_case=True)
        answer = tries.first.get_by_test_id("response-body")
        expect(answer).to_have_text("<b>thanks</b>")  # shown as text, never as markup
        expect(answer.locator("b")).to_have_count(0)
        assert call["headers"]["webhook-signature"] not in page.content()

        detail.get_by_role("button", name="Resend").click()
        _, second = receiver.wait_for(2)
        assert second["headers"]["webhook-id"] == webhook_id
        assert Webhook(account["webhook_secret"]).verify(second["raw"], second["headers"])
        expect(tries).to_have_count(2)
        expect(tries.nth(1)).to_contain_text("HTTP 200")

        page.get_by_role("button", name="Refresh").click()
        row = portal.locator(f'tr[data-webhook-id="{webhook_id}"]')
        expect(row).to_contain_text("delivered")
        expect(row.locator("td.num")).to_have_text("2")

        # Searched by the start of its id, and filtered out by a date range before it. Each
        # answer replaces the form, so the next field is filled only once it has come.
        def filtered() -> Any:
            return page.expect_response(lambda r: "/console/partials/webhooks?" in r.url)

        page.get_by_label("Search", exact=True).fill(webhook_id[:-2])
        with filtered():
            page.get_by_role("button", name="Filter").click()
        expect(portal.get_by_test_id("delivery-count")).to_have_text("1 delivery")
        expect(row).to_be_visible()
        page.get_by_label("Search", exact=True).fill("msg_nothing")
        with filtered():
            page.get_by_role("button", name="Filter").click()
        expect(portal.get_by_test_id("delivery-count")).to_have_text("0 deliveries")
        page.get_by_label("Search", exact=True).fill("")
        page.get_by_label("To", exact=True).fill("2000-01-01")
        with filtered():
            page.get_by_role("button", name="Filter").click()
        expect(portal.get_by_test_id("delivery-count")).to_have_text("0 deliveries")
        expect(portal.locator("tbody")).to_contain_text("No deliveries match")
    finally:
        receiver.close()
