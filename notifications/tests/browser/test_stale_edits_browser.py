"""Two editors in two real browsers (Debian's chromium) open one template, both change only its
French wording and both save (issue 18): the second save is refused naming the first's
version, the first editor's version stays active, the second editor's text stays on the
page, and once merged by hand it saves. Screenshots go to `test-artifacts/stale-edits/`.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

from notifications.access.groups import TEMPLATE_EDITORS
from notifications.models import EmailTemplate
from notifications.tests.support.api import make_user
from notifications.tests.browser.test_admin_browser import (  # noqa: F401 - fixtures used by name
    PASSWORD,
    TIMEOUT_MS,
    browser_locale,
    browser_page,
    log_in,
)

pytestmark = [pytest.mark.browser]

KEY = "billing_invoice_monthly"
ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts" / "stale-edits"


def editor(username: str):
    user = make_user(username, TEMPLATE_EDITORS)
    user.is_staff, user.email = True, f"{username}@rgz.bj"
    user.set_password(PASSWORD)
    user.save()
    return user


def open_template(page, user) -> None:
    log_in(page, user)
    page.get_by_role("link", name="Email templates", exact=True).click()
    page.get_by_role("link", name=KEY).click()
    page.get_by_role("heading", name=KEY, exact=True).wait_for()


def save_and_continue(page) -> None:
    with page.expect_navigation():
        page.get_by_role("button", name="Save and continue editing").click()


def test_two_editors_save_the_french_wording_the_second_is_refused_and_keeps_their_text(
    browser_page, live_server, browser_locale, transactional_db, default_templates,  # noqa: F811 - fixtures
):
    alice, bob = editor("alice"), editor("bob")
    template = EmailTemplate.objects.get(key=KEY)
    original = template.versions.get(language="fr", is_active=True)
    alice_page = browser_page
    bob_context = alice_page.context.browser.new_context(base_url=live_server.url, locale=browser_locale)
    bob_context.set_default_timeout(TIMEOUT_MS)
    try:
        bob_page = bob_context.new_page()
        open_template(alice_page, alice)
        open_template(bob_page, bob)

        alice_html = alice_page.locator("#id_version_fr_html_content")
        alice_html.fill(alice_html.input_value().replace("Merci pour votre confiance!", "Merci, signé Alice."))
        save_and_continue(alice_page)
        assert "New version billing_invoice_monthly [fr] v2 saved" in alice_page.locator(".messagelist").inner_text()
        alices = template.versions.get(language="fr", is_active=True)
        assert alices.version == 2 and alices.created_by == alice

        bob_html = bob_page.locator("#id_version_fr_html_content")
        bob_text = bob_html.input_value().replace("Cordialement,", "Bien à vous, signé Bob,")
        bob_html.fill(bob_text)
        save_and_continue(bob_page)
        refusal = bob_page.locator(".errorlist.nonfield").inner_text()
        assert "Not saved: this template changed after you opened it: billing_invoice_monthly [fr] v2 " \
               "was saved by alice at" in refusal
        assert template.versions.get(language="fr", is_active=True) == alices  # the first's version stays
        assert template.versions.count() == 2
        # Bob's text is still in his editor, and the page links what Alice changed.
        assert bob_page.locator("#id_version_fr_html_content").input_value() == bob_text
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        bob_page.screenshot(path=str(ARTIFACTS / "1-refused.png"), full_page=True)
        with bob_page.context.expect_page() as opened:
            bob_page.locator(".stale-save").get_by_role("link", name="see what they changed").click()
        diff = opened.value
        diff.locator("pre.diff").first.wait_for()
        assert "+<p>Merci, signé Alice.</p>" in diff.locator(".diff-add").all_inner_texts()
        diff.close()

        # Merged by hand (Alice's wording with Bob's change), the save goes through.
        bob_page.locator("#id_version_fr_html_content").fill(
            alices.html_content.replace("Cordialement,", "Bien à vous, signé Bob,"))
        save_and_continue(bob_page)
        assert "New version billing_invoice_monthly [fr] v3 saved" in bob_page.locator(".messagelist").inner_text()
        merged = template.versions.get(language="fr", is_active=True)
        assert "signé Alice" in merged.html_content and "signé Bob" in merged.html_content
        assert original.html_content != merged.html_content
    finally:
        bob_context.close()
