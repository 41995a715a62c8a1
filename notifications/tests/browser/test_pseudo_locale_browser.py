"""One language at a time, checked the way a translator would (issue 19, part 2).

Under a pseudo-locale whose catalogue wraps every catalogue string as `⟦…⟧`
(tests/support/pseudo.py), one browser walks the admin pages an editor and an auditor use:
the template list, the editor, the history, the diff, a version's preview, the desk, a
message, a recipient's history, and the browsable API's refusals. Every visible text that is
neither wrapped nor data (what the rows hold: template content, addresses, ids; dates and
numbers) is a string that never went through a catalogue, English on a French page: listed
with its page, it fails the test. The API's JSON errors are read the same way. Then the
desk and the message are walked in French and in English, where no raw status code
(`cancelled`, `queued`) may show.

One browser, one pass over each page: the walk takes a few seconds.
"""
from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from notifications.models import (
    DeliveryAttempt,
    DeliveryEvent,
    EmailAttachment,
    Message,
    EmailTemplate,
    EmailTemplateVersion,
    Status,
)
from notifications.core.outbox.message_actions import cancel_message
from notifications.channels.email.sending import send_mail_template
from notifications.authoring.versions import create_template_version
from notifications.tests.support import pseudo
from notifications.tests.support.api import create_key, make_user
from notifications.tests.support.payloads import INVOICE_VARS
from notifications.tests.browser.test_admin_browser import browser_locale, browser_page, superuser  # noqa: F401

pytestmark = [pytest.mark.browser]

#: What the page shows as text: text nodes of rendered, visible elements, and the labels of
#: buttons written as <input>. Form fields' contents are what the rows hold (data), the
#: sandboxed preview frames are the email itself (data), so neither is read.
VISIBLE_TEXT = """() => {
  const shown = el => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
  const skip = new Set(['SCRIPT', 'STYLE', 'NOSCRIPT', 'TEMPLATE', 'TEXTAREA', 'OPTION', 'IFRAME', 'CODE', 'PRE']);
  const found = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent.trim();
    const parent = node.parentElement;
    if (!text || !parent || skip.has(parent.tagName) || parent.closest('pre, code, textarea, [data-content]')) continue;
    if (shown(parent)) found.push(text);
  }
  for (const input of document.querySelectorAll('input[type=submit], input[type=button]')) {
    if (input.value.trim() && shown(input)) found.push(input.value.trim());
  }
  for (const select of document.querySelectorAll('select')) {
    if (shown(select) && select.selectedOptions.length) found.push(select.selectedOptions[0].textContent.trim());
  }
  return found;
}"""

#: Dates, times, numbers, ids, addresses, sizes and punctuation: data in any language.
DATA_PATTERNS = [
    re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+"),
    re.compile(r"https?://\S+"),
    re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"),
    re.compile(r"\b[0-9a-f]{12,64}\b"),
    re.compile(r"\b(application|text|image|multipart|message)/[\w.+-]+"),
    re.compile(r"<[^<>\s]+@[^<>\s]+>"),
]
LETTERS = re.compile(r"[^\W\d_]{2,}")
#: Names that are the same in every language: the languages' own names, our product's units.
NEUTRAL = {"Français", "English", "fr", "en", "HTML", "CSV", "JSON", "PDF", "ID", "MIME", "UTC", "API", "px",
           "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}

#: Stored audit text: read as text to check, never as data (it is shown from its code, translated).
AUDIT_TEXT_FIELDS = {"error", "error_message"}


def _data_strings() -> re.Pattern:
    """Every text value the rows of this walk hold (choices aside: those are shown by their
    labels), longest first, so that a subject is taken out before any of its words."""
    found: set[str] = {"Django REST framework"}

    def add(value) -> None:
        if isinstance(value, str) and value.strip():
            found.add(value.strip())
            found.update(line.strip() for line in value.splitlines() if line.strip())
        elif isinstance(value, dict):
            for key, item in value.items():
                add(key)
                add(item)
        elif isinstance(value, list):
            for item in value:
                add(item)

    for model in (EmailTemplate, EmailTemplateVersion, Message, DeliveryAttempt, DeliveryEvent, EmailAttachment,
                  get_user_model()):
        fields = [field.attname for field in model._meta.concrete_fields
                  if not field.choices and field.name not in AUDIT_TEXT_FIELDS
                  and field.get_internal_type() in ("CharField", "TextField", "EmailField", "SlugField", "JSONField")]
        for row in model.objects.values(*fields):
            add(list(row.values()))
    # Whole values only (a "09" in a row is no licence for the "09" inside a hash).
    return re.compile("|".join(f"(?<!\\w){re.escape(value)}(?!\\w)" for value in sorted(found, key=len, reverse=True)))


def leaks(texts: list[str], data: re.Pattern) -> list[str]:
    """The texts that hold words neither wrapped nor data."""
    found = []
    for text in texts:
        rest = data.sub(" ", pseudo.unwrapped(text))
        for pattern in DATA_PATTERNS:
            rest = pattern.sub(" ", rest)
        words = [word for word in LETTERS.findall(rest) if word not in NEUTRAL]
        if words:
            found.append(text)
    return found


@pytest.fixture
def pseudo_locale(settings, tmp_path):
    """The pseudo-locale, first in LOCALE_PATHS, and a language the middleware accepts."""
    settings.LOCALE_PATHS = [pseudo.build(tmp_path / "locale"), *settings.LOCALE_PATHS]
    settings.LANGUAGES = [*settings.LANGUAGES, (pseudo.LANGUAGE, "Pseudo")]
    return pseudo.LANGUAGE


@pytest.fixture
def walked(default_templates, superuser):  # noqa: F811
    """One template with two versions (a diff to show), one message sent with an attachment, one cancelled."""
    template = EmailTemplate.objects.get(key="billing_invoice_monthly")
    active = template.versions.get(language="fr", is_active=True)
    second = create_template_version(template=template, language="fr", subject=active.subject + " (2)",
                                     html_content=active.html_content.replace("<p>", "<p class=\"x\">", 1),
                                     text_content=active.text_content, created_by=superuser)
    [sent] = send_mail_template("billing_invoice_monthly", "reseller@techconnect.bj", INVOICE_VARS,
                                attachments=[("facture.pdf", b"%PDF-1.4 x", "application/pdf")], sent_by=superuser)
    [later] = send_mail_template("billing_invoice_monthly", "noc@rgz.bj", INVOICE_VARS, sent_by=superuser,
                                 send_at=timezone.now() + timedelta(days=1))
    cancel_message(message=later)
    return {"template": template, "version": second, "message": Message.objects.get(pk=sent.pk),
            "cancelled": Message.objects.get(pk=later.pk)}


def _pages(walked) -> dict[str, str]:
    template, version, message = walked["template"], walked["version"], walked["message"]
    base = "/admin/notifications/emailtemplate"
    return {
        "template list": f"{base}/",
        "editor": f"{base}/{template.pk}/change/",
        "history": f"{base}/{template.pk}/history/",
        "diff": f"{base}/{template.pk}/diff/",
        "version preview": f"{base}/{template.pk}/versions/{version.pk}/preview/",
        "desk list": "/admin/notifications/message/",
        "message": f"/admin/notifications/message/{message.pk}/change/",
        "cancelled message": f"/admin/notifications/message/{walked['cancelled'].pk}/change/",
        "recipient history": f"/admin/notifications/message/recipient/?email={message.address}",
        "admin index": "/admin/",
        **{f"{model._meta.verbose_name_plural} list": f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
           for model in admin.site._registry if model._meta.app_label == "notifications"
           and model not in (EmailTemplate, Message)},
        "API refusal (405, browsable)": "/api/v1/email/send",
        "API not found (browsable)": "/api/v1/email/templates/no-such-template",
    }


@pytest.mark.parametrize("browser_locale", ["en-XA"])
def test_every_visible_string_of_the_walk_is_wrapped_or_data(
        pseudo_locale, browser_page, superuser, walked, browser_locale):  # noqa: F811
    page = browser_page
    log_in_pseudo(page, superuser)
    data = _data_strings()
    found: dict[str, list[str]] = {}
    for name, path in _pages(walked).items():
        page.goto(path)
        texts = page.evaluate(VISIBLE_TEXT)
        assert any(pseudo.OPEN in text for text in texts), f"{name}: the pseudo-locale is not in force"
        unexpected = leaks(texts, data)
        if unexpected:
            found[name] = unexpected
    assert not found, "Strings that went through no catalogue:\n" + "\n".join(
        f"  {name}: {text!r}" for name, texts in found.items() for text in texts)


def log_in_pseudo(page, user) -> None:
    page.goto("/admin/login/?next=/admin/")
    page.locator("#id_username").fill(user.username)
    page.locator("#id_password").fill("Adm1n-browser-pw")
    with page.expect_navigation():
        page.locator("input[type=submit]").click()
    assert "/admin/login/" not in page.url


def _strings(node) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [text for key, value in node.items() if key != "codes" for text in _strings(value)]
    if isinstance(node, list):
        return [text for value in node for text in _strings(value)]
    return []


def test_the_api_s_json_errors_are_wrapped_under_the_pseudo_locale(pseudo_locale, db):
    sender = make_user("billing-service", "Senders")
    key = create_key(sender)
    client = Client(headers={"Accept-Language": pseudo.LANGUAGE})
    answers = {
        "401": client.get("/api/v1/email/templates"),
        "403": Client(headers={"Accept-Language": pseudo.LANGUAGE, "Authorization": f"Bearer {create_key(make_user('x'))}"})
        .get("/api/v1/email/templates"),
        "400": client.post("/api/v1/email/send", {"to": "not an address", "variables": []},
                           content_type="application/json", headers={"Authorization": f"Bearer {key}"}),
        "404": client.get("/api/v1/email/messages/00000000-0000-0000-0000-000000000000",
                          headers={"Authorization": f"Bearer {key}"}),
        "415": client.post("/api/v1/email/send", "x", content_type="text/plain", headers={"Authorization": f"Bearer {key}"}),
    }
    for status, answer in answers.items():
        assert str(answer.status_code) == status, (status, answer.content)
        messages = _strings(json.loads(answer.content))
        assert messages, status
        for message in messages:
            assert message.startswith(pseudo.OPEN) and message.endswith(pseudo.CLOSE), (status, message)


STATUS_CODES = {status.value for status in Status}


def raw_statuses(text: str, language: str) -> set[str]:
    """The status codes `text` shows raw: in French, any (no code is a French word); in English,
    those standing where a label would ("sent", "(sent)", "…: sent"), not the words of a sentence."""
    codes = set(re.findall(r"[a-z_]+", text)) & STATUS_CODES
    if language.startswith("fr"):
        return codes
    return {code for code in codes if re.search(rf"(^|\(|: ){code}(\)|$)", text.strip())}


@pytest.mark.parametrize("browser_locale", ["fr-FR", "en-US"])
def test_no_raw_status_code_on_the_desk_or_a_message(browser_page, superuser, walked, browser_locale):  # noqa: F811
    page = browser_page
    log_in_pseudo(page, superuser)
    pages = _pages(walked)
    found = []
    for name in ("desk list", "message", "cancelled message", "recipient history"):
        page.goto(pages[name])
        for text in page.evaluate(VISIBLE_TEXT):
            if raw_statuses(text, browser_locale):
                found.append(f"{name}: {text!r}")
    assert not found, "Raw status codes:\n" + "\n".join(found)


def test_the_pseudo_catalogue_wraps_django_s_ours_and_drf_s(pseudo_locale):
    from django.utils import translation

    with translation.override(pseudo.LANGUAGE):
        assert translation.gettext("Save") == "⟦Save⟧"  # Django's admin
        assert translation.gettext("Unknown field.") == "⟦Unknown field.⟧"  # ours
        assert translation.gettext("Method \"{method}\" not allowed.") == "⟦Method \"{method}\" not allowed.⟧"  # DRF


def test_the_check_tells_a_leak_from_wrapped_text_and_data():
    data = re.compile(r"(?<!\w)billing_invoice_monthly(?!\w)")
    assert leaks(["Template List", "⟦Send⟧ billing_invoice_monthly", "⟦Change ⟦email template⟧⟧",
                  "12 345 — 2026-02-21 14:30", "ops@rgz.bj", "⟦Narrow⟧ (375 px)", "⟦Sent⟧ at"], data) == [
        "Template List", "⟦Sent⟧ at"]
