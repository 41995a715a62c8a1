"""The template editor in a real browser (Debian's chromium), as a Template editor uses it:
edit billing_invoice_monthly, watch the live preview change, save, read the new version in
the history, its diff and the preview of the old one, roll back, send a test and find it at
the test's SMTP server. A script in a sample variable never runs in any preview: no dialog
opens and no request leaves the frame. Screenshots go to `test-artifacts/admin-editor/`.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings

from notifications.access.groups import TEMPLATE_EDITORS
from notifications.models import Message, EmailTemplate, TemplateVersionActivation
from notifications.tests.support.api import make_user
from notifications.tests.support.smtp import SilentServer
from notifications.tests.browser.test_admin_browser import (  # noqa: F401 - fixtures used by name
    PASSWORD,
    browser_locale,
    browser_page,
    log_in,
)

pytestmark = [pytest.mark.browser]

KEY = "billing_invoice_monthly"
ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts" / "admin-editor"


@pytest.fixture
def canary():
    """A server the script's image would fetch from: it must never be contacted."""
    server = SilentServer().start()
    yield server
    server.stop()


@pytest.fixture
def template_editor(transactional_db, django_user_model):
    user = make_user("redactrice", TEMPLATE_EDITORS)
    user.is_staff, user.email = True, "redactrice@rgz.bj"
    user.set_password(PASSWORD)
    user.save()
    return user


def shoot(page, name: str) -> None:
    """A screenshot of the whole page for people to look at (nothing is asserted on it but that it exists).

    Headless chromium paints sandboxed (out-of-process) frames only inside the viewport, so
    the viewport is stretched to the page for the picture, then put back; the pause only
    lets those frames paint.
    """
    viewport = page.viewport_size
    page.set_viewport_size({"width": viewport["width"], "height": page.evaluate("document.body.scrollHeight")})
    page.wait_for_timeout(300)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    page.set_viewport_size(viewport)
    assert path.stat().st_size > 0
    print(f"screenshot: {path}")


def version_row(page, number: int):
    return page.locator("#versions-group tbody tr").filter(
        has=page.locator("td.field-version", has_text=re.compile(rf"^\s*{number}\s*$")))


def test_a_template_editor_edits_previews_saves_compares_rolls_back_and_sends_a_test(
    browser_page, template_editor, default_templates, smtp_backend, canary,  # noqa: F811 - the imported fixture
):
    page = browser_page
    script = f"<script>alert(1)</script><img src=http://127.0.0.1:{canary.port}/x>"
    template = EmailTemplate.objects.get(key=KEY)
    template.sample_variables = {**template.sample_variables, "amount_fcfa": script}
    template.save()
    [first] = template.versions.all()

    # Playwright reports a load the frame's CSP refuses as a request that failed with "csp":
    # it never leaves the browser. Anything else aimed at the canary would have.
    dialogs, blocked, left = [], [], []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on("requestfailed", lambda request: (blocked if request.failure == "csp" else left).append(request.url))
    page.on("requestfinished", lambda request: left.append(request.url))

    log_in(page, template_editor)
    page.get_by_role("link", name="Email templates", exact=True).click()
    page.get_by_role("link", name=KEY).click()
    page.get_by_role("heading", name=KEY, exact=True).wait_for()

    # The live preview shows the active wording with the sample variables, in the sandboxed frame.
    frame_element = page.locator("#template-editor .preview-frame iframe")
    assert frame_element.get_attribute("sandbox") == ""
    preview = page.frame_locator("#template-editor .preview-frame iframe")
    preview.get_by_text("Merci pour votre confiance!").wait_for()
    assert page.locator("#template-editor .preview-subject").inner_text() == "Facture RGZ — février 2026"

    # Typing changes the preview. The editor's own HTML may hold a script and a remote image:
    # the frame runs and fetches neither.
    html = page.locator("#id_version_fr_html_content")
    html.fill(html.input_value().replace(
        "<p>Merci pour votre confiance!</p>",
        "<p>Merci beaucoup pour votre fidélité !</p>\n"
        f'<script>alert(2)</script><img src="http://127.0.0.1:{canary.port}/html" onerror="alert(3)">',
    ))
    preview.get_by_text("Merci beaucoup pour votre fidélité !").wait_for()
    page.locator("#template-editor [data-width='375']").click()
    shoot(page, "1-editor-live-preview")

    with page.expect_navigation():  # back to the editor, not to the list
        page.get_by_role("button", name="Save and continue editing").click()
    assert "New version billing_invoice_monthly [fr] v2 saved" in page.locator(".messagelist").inner_text()
    second = template.versions.get(is_active=True)
    assert second.version == 2 and "Merci beaucoup" in second.html_content
    assert second.created_by == template_editor
    assert version_row(page, 2).locator("td.field-is_active img").get_attribute("alt") == "True"
    assert version_row(page, 1).locator("td.field-is_active img").get_attribute("alt") == "False"
    shoot(page, "2-history")

    # The diff of v2 with the previous one.
    version_row(page, 2).get_by_role("link", name="Diff").click()
    page.locator("pre.diff").first.wait_for()
    assert "-<p>Merci pour votre confiance!</p>" in page.locator(".diff-del").all_inner_texts()
    assert "+<p>Merci beaucoup pour votre fidélité !</p>" in page.locator(".diff-add").all_inner_texts()
    shoot(page, "3-diff")

    # The preview of the old version, narrow and wide.
    page.go_back()
    version_row(page, 1).get_by_role("link", name="Preview").click()
    page.locator(".preview-narrow iframe").wait_for()
    for width in ("narrow", "wide"):
        frame = page.frame_locator(f".preview-{width} iframe")
        frame.get_by_text("Merci pour votre confiance!").wait_for()
        assert frame.get_by_text("Merci beaucoup").count() == 0
    assert page.locator(".preview-narrow iframe").bounding_box()["width"] < 400
    shoot(page, "4-old-version-preview")

    # Roll back to v1: asked first, then recorded.
    page.go_back()
    with page.expect_navigation():
        version_row(page, 1).get_by_role("button", name="Make this version active").click()
    page.get_by_text("It replaces billing_invoice_monthly [fr] v2, which stays in the history.").wait_for()
    assert template.versions.get(is_active=True).version == 2  # nothing changed yet
    with page.expect_navigation():
        page.get_by_role("button", name="Yes, make it active").click()
    assert "v1 is the active one again" in page.locator(".messagelist").inner_text()
    first.refresh_from_db()
    assert first.is_active and TemplateVersionActivation.objects.filter(version=first, rollback=True).exists()
    shoot(page, "5-rolled-back")

    # A test of the draft being edited, to the editor's own address.
    subject = page.locator("#id_version_fr_subject")
    subject.fill("Test — " + subject.input_value())
    page.get_by_role("button", name="Send test of the draft").click()
    page.locator(".test-result", has_text="Test sent to redactrice@rgz.bj").wait_for()
    [received] = smtp_backend.wait_for(1)
    assert received.rcpt_tos == ["redactrice@rgz.bj"]
    assert received.message["Subject"] == "Test — Facture RGZ — février 2026"
    [message] = Message.objects.all()
    assert (message.source_endpoint, message.template_version, message.sent_by) == ("admin-test", None, template_editor)
    shoot(page, "6-test-sent")

    # Neither script ran (the sample variable's is text, the editor's own is in a frame without
    # scripts), and no image left a frame: the editor's remote image was refused by the frame's CSP.
    assert dialogs == []
    assert [url for url in blocked if f":{canary.port}/" in url], "the remote image was never even tried"
    assert not [url for url in left if f":{canary.port}/" in url]
    assert canary.connections == 0


def test_the_editor_shows_the_wording_first_numbers_its_lines_and_guards_the_text_part(
    browser_page, template_editor, default_templates,  # noqa: F811 - the imported fixture
):
    """Issue 19, "The editor": the wording first with the settings folded below; line numbers
    with the erroneous line highlighted; "text from HTML" with a warning when only the HTML
    changed; the render budget's refusal as one sentence with its detail folded."""
    page = browser_page
    template = EmailTemplate.objects.get(key=KEY)
    log_in(page, template_editor)
    page.goto(f"/admin/notifications/emailtemplate/{template.pk}/change/")
    page.get_by_role("heading", name=KEY, exact=True).wait_for()

    # The wording is in the first screen; the settings are folded below it until asked for.
    assert page.locator("#id_version_fr_subject").bounding_box()["y"] < page.viewport_size["height"]
    required = page.locator('input[name="required_variables"]').first
    assert not required.is_visible()
    page.get_by_text("Settings, variables and recipients").click()
    assert required.is_visible()
    shoot(page, "7-wording-first")

    # Every line of the HTML is numbered; a syntax error's line is highlighted, then cleared.
    html = page.locator("#id_version_fr_html_content")
    gutter = page.locator(".field-version_fr_html_content .line-numbers")
    original = html.input_value()
    assert gutter.locator("div").count() == len(original.split("\n"))
    lines = original.split("\n")
    html.fill("\n".join([*lines[:2], "{% if %}", *lines[2:]]))
    gutter.locator(".error-line", has_text="3").wait_for()
    assert page.locator(".field-version_fr_html_content .error-line-mark").is_visible()
    assert "line 3" in page.locator("#template-editor .preview-errors").inner_text()
    html.fill(original)
    gutter.locator(".error-line").wait_for(state="detached")

    # The HTML changes and the text does not: warned before saving, and after.
    warning = page.locator('.editor-language[data-language="fr"] [data-text-warning]')
    assert not warning.is_visible()
    html.fill(original.replace("Merci pour votre confiance!", "Merci de votre fidélité !"))
    warning.wait_for()
    with page.expect_navigation():
        page.get_by_role("button", name="Save and continue editing").click()
    assert "changed and its text did not" in page.locator(".messagelist").inner_text()
    # "Text from HTML": the text part is emptied, and the preview's text is made from the HTML.
    page.get_by_role("button", name="Use the text generated from the HTML").first.click()
    assert page.locator("#id_version_fr_text_content").input_value() == ""
    page.locator("#template-editor .preview-text", has_text="Merci de votre fidélité !").wait_for()
    with page.expect_navigation():
        page.get_by_role("button", name="Save and continue editing").click()
    assert "changed and its text did not" not in page.locator(".messagelist").inner_text()
    assert template.versions.get(is_active=True).text_content == ""

    # Too much work: one sentence, the detail (naming the setting) folded for the administrator.
    loops = "{% for i in range(99999) %}{% for j in range(99999) %}x{% endfor %}{% endfor %}"
    html = page.locator("#id_version_fr_html_content")
    html.fill(html.input_value() + loops)
    errors = page.locator("#template-editor .preview-errors")
    errors.get_by_text("This template does too much work to render").wait_for()
    assert not errors.get_by_text("TEMPLATE_RENDER_MAX_OPERATIONS").is_visible()
    errors.get_by_text("Detail for the administrator").click()
    assert errors.get_by_text("TEMPLATE_RENDER_MAX_OPERATIONS").is_visible()
    with page.expect_navigation():
        page.get_by_role("button", name="Save and continue editing").click()
    assert "This template does too much work to render" in page.locator(".errorlist.nonfield").inner_text()
    detail = page.locator("#template-editor details.error-detail")
    assert not detail.get_by_text("TEMPLATE_RENDER_MAX_OPERATIONS").is_visible()
    shoot(page, "8-budget-refused")
    assert template.versions.count() == 3
