"""The audit desk in a real browser (issue 12: "tried as one would, in a real browser"): the
list fits a 1280-pixel window, a message's HTML shows rendered in its sandboxed frame, the
attachment downloads, and Resend goes through its confirmation to the new message."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from notifications.models import Message, Status
from notifications.channels.email.sending import send_mail_template
from notifications.tests.support.files import make_pdf
from notifications.tests.support.payloads import INVOICE_VARS
from notifications.tests.browser.test_admin_browser import browser_locale, browser_page, log_in, superuser  # noqa: F401

# The fixtures are those of the admin's browser tests (imported above).

pytestmark = [pytest.mark.browser]

PDF = make_pdf("Facture INV-2026-0042")
SCREENSHOTS = os.environ.get("NOTIF_SCREENSHOTS", "")  # a folder: keep what the browser showed


def shot(page, name: str) -> None:
    if SCREENSHOTS:
        page.screenshot(path=os.path.join(SCREENSHOTS, f"{name}.png"), full_page=True)


def test_the_desk_in_a_browser_fits_shows_downloads_and_resends(browser_page, superuser, default_templates):  # noqa: F811
    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 800})
    [message] = send_mail_template("billing_invoice_monthly", "reseller@techconnect.bj", INVOICE_VARS,
                                   attachments=[("facture-été.pdf", PDF, "application/pdf")], sent_by=superuser)
    assert Message.objects.get(pk=message.pk).status == Status.SENT
    log_in(page, superuser)

    page.goto("/admin/notifications/message/")
    shot(page, "list")
    # Every column is inside the window and inside its box: nothing to scroll sideways to.
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    results = page.locator("#changelist .results")
    assert results.evaluate("box => box.scrollWidth <= box.clientWidth"), results.evaluate(
        "box => [box.scrollWidth, box.clientWidth]")
    box = page.locator("#result_list").bounding_box()
    assert box["x"] + box["width"] <= 1280
    assert page.get_by_role("columnheader", name="Sent at").is_visible()

    page.goto(f"/admin/notifications/message/{message.pk}/change/")
    frame = page.frame_locator("iframe[sandbox='']")
    assert "Tech Connect SA" in frame.locator("body").inner_text()  # rendered, not source text
    assert page.locator("iframe[sandbox='']").bounding_box()["width"] >= 600
    shot(page, "message")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    assert "<p" not in page.inner_text("#content")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download").click()
    assert download.value.suggested_filename == "facture-été.pdf"
    assert Path(download.value.path()).read_bytes() == PDF

    page.get_by_role("link", name="Resend").click()
    shot(page, "confirm")
    with page.expect_navigation():
        page.get_by_role("button", name="Yes, resend").click()
    shot(page, "resent")
    copy = Message.objects.get(resent_from=message)
    assert page.url.endswith(f"/admin/notifications/message/{copy.pk}/change/")
    assert "1 message resent" in page.inner_text(".messagelist")
