"""The Content-Security-Policy in a real browser (Debian's chromium): the admin, the template
editor's live preview, the browsable API and the API docs each load under it, and work,
with no violation reported, in the console or as a `securitypolicyviolation` event.
"""
from __future__ import annotations

import pytest

from notifications.models import EmailTemplate
from notifications.tests.browser.test_admin_browser import (  # noqa: F401 - fixtures used by name
    browser_locale,
    browser_page,
    log_in,
)

pytestmark = [pytest.mark.browser]

# Recorded in every document, frames included, before any of its scripts runs.
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__csp.push(`${event.violatedDirective} ${event.blockedURI}`);
  try { window.top.__csp.push(`(frame) ${event.violatedDirective} ${event.blockedURI}`); } catch (e) {}
});
"""


@pytest.fixture
def watched(browser_page):  # noqa: F811 - the imported fixture
    """The page, and what its documents reported: console messages about the policy, and violation events."""
    page = browser_page
    page.context.add_init_script(RECORD_VIOLATIONS)
    console: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    return page, console


def policy_of(response) -> str:
    return response.headers.get("content-security-policy", "")


def assert_clean(page, console: list[str], where: str) -> None:
    reported = [line for line in console if "Content Security Policy" in line or "Content-Security-Policy" in line]
    events = page.evaluate("window.__csp")
    assert not reported and not events, (where, reported, events)


def test_the_admin_the_preview_the_browsable_api_and_the_docs_load_with_no_csp_violation(
    watched, admin_user, default_templates
):
    page, console = watched
    admin_user.set_password("Adm1n-browser-pw")
    admin_user.save()

    # The admin: login, index, a change list and the template editor with its live preview.
    login = page.goto("/admin/login/")
    assert "script-src 'self'" in policy_of(login)
    log_in(page, admin_user)
    assert_clean(page, console, "admin index")
    page.goto("/admin/notifications/message/")
    page.locator("#changelist").wait_for()
    assert_clean(page, console, "admin change list")

    template = EmailTemplate.objects.get(key="billing_invoice_monthly")
    editor = page.goto(f"/admin/notifications/emailtemplate/{template.pk}/change/")
    assert "frame-ancestors 'none'" in policy_of(editor)
    preview = page.frame_locator("#template-editor .preview-frame iframe")
    preview.get_by_text("Merci pour votre confiance!").wait_for()
    html = page.locator("#id_version_fr_html_content")  # an edit: the preview is fetched again
    html.fill(html.input_value().replace("<p>Merci pour votre confiance!</p>",
                                         "<p>Merci pour votre confiance!</p><p>Policy checked</p>"))
    preview.get_by_text("Policy checked").wait_for()
    assert_clean(page, console, "template editor and its preview")

    # The browsable API, with the admin's session.
    api = page.goto("/api/v1/email/templates", wait_until="load")
    assert "script-src 'self'" in policy_of(api)
    page.locator(".response-info").wait_for()
    assert "billing_invoice_monthly" in page.locator(".response-info").inner_text()
    assert page.evaluate("typeof window.jQuery") == "function"  # its scripts ran
    assert_clean(page, console, "browsable API")

    # The API docs: Swagger UI starts from a script file, renders the schema it fetched.
    docs = page.goto("/api/docs/")
    assert "script-src 'self'" in policy_of(docs)
    page.locator(".swagger-ui .info .title").wait_for()
    page.get_by_text("/api/v1/email/send", exact=True).first.wait_for()
    assert_clean(page, console, "API docs")
