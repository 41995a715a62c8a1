"""The admin in a real browser, clicked through as a staff user would.

Debian's chromium (`NOTIF_CHROMIUM`, default `/usr/bin/chromium`) driven by Playwright through
`executable_path`: no browser is ever downloaded. Outside CI a missing chromium or Playwright
skips with a reason; under `CI=true` it fails.
"""
from __future__ import annotations

import os
import re

import pytest
from django.db import connections

from notifications.models import Message, EmailTemplate, EmailTemplateVersion, SMTPServerConfig
from notifications.channels.email.sending import send_mail_template
from notifications.tests.support.services import require

pytestmark = [pytest.mark.browser]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "Adm1n-browser-pw"
SMTP_PASSWORD = "S3cret-smtp-P@ss"
TIMEOUT_MS = 10_000


@pytest.fixture
def browser_locale() -> str:
    """The browser's language, sent as Accept-Language; tests of the languages parametrize it."""
    return "en-US"


@pytest.fixture
def browser_page(monkeypatch, live_server, browser_locale):
    """A new headless page in Debian's chromium, in a fresh context with an empty profile.

    Playwright's sync API keeps an asyncio loop running on the test thread while it is open,
    so Django's async-safety guard would refuse every ORM call the test makes between
    clicks. Those are plain blocking calls on the test's own thread (the live server answers
    from threads of its own), so the guard is lifted for this test only, and each database
    assertion stays right after the clicks it checks. Under a running loop Django also keeps
    the thread's connections apart from its usual ones (asgiref's `Local`): the one the test
    opens in here is closed before the loop stops, or it would outlive the test and keep
    PostgreSQL from dropping the test database.
    """
    chromium = os.environ.get("NOTIF_CHROMIUM", "/usr/bin/chromium")
    require(os.access(chromium, os.X_OK), f"no chromium at {chromium} (apt-get install chromium, or set NOTIF_CHROMIUM)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "playwright is not installed (pip install -r requirements.txt)")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        # The admin follows Accept-Language: pin it, the assertions read one language.
        context = browser.new_context(base_url=live_server.url, locale=browser_locale)
        context.set_default_timeout(TIMEOUT_MS)
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()
            connections.close_all()


@pytest.fixture
def superuser(transactional_db, django_user_model):
    return django_user_model.objects.create_superuser("ops", "ops@rgz.bj", PASSWORD)


def log_in(page, user) -> None:
    page.goto("/admin/")
    assert "/admin/login/" in page.url
    page.get_by_label("Username:", exact=True).fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Site administration").wait_for()
    assert f"welcome, {user.username}." in page.inner_text("#user-tools").lower()


def save(page) -> None:
    """Press Save and wait for the answer, so that what follows reads the new page, not the last one."""
    with page.expect_navigation():
        page.get_by_role("button", name="Save", exact=True).click()


def errors_on(page) -> str:
    page.locator(".errornote").wait_for()
    return " ".join(page.locator(".errornote, .errorlist").all_inner_texts())


def test_a_staff_user_adds_a_template_version_and_a_broken_one_is_refused(browser_page, superuser, default_templates):
    page = browser_page
    template = EmailTemplate.objects.get(key="billing_invoice_monthly")
    [previous] = template.versions.all()
    before = {f.name: getattr(previous, f.name) for f in EmailTemplateVersion._meta.fields}

    log_in(page, superuser)
    page.get_by_role("link", name="Email templates", exact=True).click()
    page.get_by_role("link", name="billing_invoice_monthly").click()
    page.get_by_role("heading", name="billing_invoice_monthly", exact=True).wait_for()
    assert previous.subject in page.inner_text("#versions-group")

    # The template's page lists its versions read-only; an edit starts from one of them and
    # is saved as a new version. The form opens filled with that version's content.
    page.locator("#versions-group").get_by_role("link", name="New version from this one").click()
    assert page.input_value("#id_subject") == previous.subject
    assert page.input_value("#id_html_content") == previous.html_content
    assert page.input_value("#id_template") == str(template.pk)

    def fill_version(**changes: str) -> None:
        values = {
            "subject": previous.subject,
            "preheader": previous.preheader,
            "html_content": previous.html_content,
            "text_content": previous.text_content,
            **changes,
        }
        page.select_option("#id_template", label="billing_invoice_monthly")
        page.select_option("#id_language", "fr")
        for field, value in values.items():
            page.fill(f"#id_{field}", value)
        save(page)

    new_subject = "Votre facture RGZ — {{ month }} {{ year }}"
    fill_version(subject=new_subject)
    success = page.locator(".messagelist .success").inner_text()
    assert re.search(r"billing_invoice_monthly \[fr\] v2.* was added successfully", success), success
    assert new_subject in page.inner_text("#result_list")

    versions = list(template.versions.order_by("version"))
    assert [(v.version, v.is_active, v.subject) for v in versions] == [
        (1, False, previous.subject),
        (2, True, new_subject),
    ]
    assert versions[1].created_by == superuser
    # Browsers send a textarea with CRLF line endings: stored with LF, nothing trimmed.
    assert versions[1].html_content == previous.html_content
    previous.refresh_from_db()
    assert {f.name: getattr(previous, f.name) for f in EmailTemplateVersion._meta.fields} == {
        **before, "is_active": False,
    }

    # Refused versions: the form comes back with the reason and the user's text, and nothing
    # is written; each attempt is made again on the page that showed the last refusal.
    page.get_by_role("link", name="Add email template version").click()
    for changes, shown in [
        ({"subject": "Facture {{ month } {{ year }}"}, "Syntax error in the subject, line 1"),
        ({"html_content": previous.html_content + "{% if %}"}, "Syntax error in the HTML, line"),
        ({"subject": "Facture {{ mnth }} {{ month }} {{ year }}"}, "uses undeclared variables: mnth"),
    ]:
        fill_version(**changes)
        assert "Please correct the error below." in errors_on(page)
        assert shown in errors_on(page)
        assert page.input_value("#id_subject") == changes.get("subject", previous.subject)
        assert template.versions.count() == 2
    assert template.versions.get(is_active=True).subject == new_subject


def test_a_staff_user_saves_an_smtp_server_whose_password_is_never_shown_again(browser_page, superuser, tmp_path):
    page = browser_page
    log_in(page, superuser)
    page.get_by_role("link", name="SMTP servers").click()
    page.get_by_role("link", name="Add SMTP server").click()
    page.get_by_label("Name:", exact=True).fill("primary")
    page.get_by_label("Host:", exact=True).fill("smtp.rgz.bj")
    page.get_by_label("Port:", exact=True).fill("587")
    page.get_by_label("Username:", exact=True).fill("noreply@rgz.bj")
    page.locator("#id_password").fill(SMTP_PASSWORD)
    save(page)
    assert "was added successfully" in page.locator(".messagelist .success").inner_text()
    assert page.locator("td.field-password_set img").get_attribute("alt") == "True"

    config = SMTPServerConfig.objects.get(name="primary")
    assert config.get_password() == SMTP_PASSWORD
    assert SMTP_PASSWORD not in config.password_encrypted

    page.get_by_role("link", name="primary", exact=True).click()
    page.get_by_role("heading", name="primary (smtp.rgz.bj:587)").wait_for()
    html = page.content()
    assert SMTP_PASSWORD not in html
    assert config.password_encrypted not in html
    assert page.input_value("#id_password") == ""
    assert page.input_value("#id_host") == "smtp.rgz.bj"

    shot = tmp_path / "smtp-server-change.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 0

    # A form sent back with an error does not echo a newly typed password either.
    page.locator("#id_password").fill("N3w-" + SMTP_PASSWORD)
    page.get_by_label("Remove the stored password").check()
    save(page)
    assert "Either give a new password or remove the stored one" in errors_on(page)
    assert SMTP_PASSWORD not in page.content()
    assert page.input_value("#id_password") == ""
    config.refresh_from_db()
    assert config.get_password() == SMTP_PASSWORD


#: What the admin shows of our models in each language: names, field labels, help texts,
#: filters, choices, fieldsets and actions (Django's own words, "Par", come from Django).
ADMIN_WORDS = {
    "fr-FR": {
        "index": ["Modèles d’e-mail", "Messages électroniques", "Serveurs SMTP", "Clés d’API"],
        "templates": ["Sélectionnez l’objet modèle d’e-mail à changer", "Par catégorie", "Facturation", "Nature"],
        "template": ["Clé", "Catégorie", "Variables obligatoires", "Nom stable utilisé par les appelants.",
                     "Versions de modèle d’e-mail", "Nouvelle version à partir de celle-ci"],
        "messages": ["Adresse du destinataire", "Clé du modèle", "Par statut", "Envoyé", "Par voie",
                     "Annuler les messages programmés ou en file sélectionnés"],
        "message": ["Adresse du destinataire", "Statut", "Tentatives de distribution",
                    "Envoyé avec une clé de test : simulé, jamais distribué."],
        "smtp": ["Nom", "Hôte", "Connexion", "Identification", "Expéditeur", "Sécurité",
                 "587 pour STARTTLS, 465 pour TLS implicite, 25 en clair.", "Supprimer le mot de passe enregistré"],
    },
    "en-US": {
        "index": ["Email templates", "Email messages", "SMTP servers", "API keys"],
        "templates": ["Select email template to change", "By category", "Billing", "Kind"],
        "template": ["Key", "Category", "Required variables", "Stable name callers use.",
                     "Email template versions", "New version from this one"],
        "messages": ["Recipient address", "Template key", "By status", "Sent", "By lane",
                     "Cancel selected scheduled or queued messages"],
        "message": ["Recipient address", "Status", "Delivery attempts",
                    "Sent with a test key: simulated, never delivered."],
        "smtp": ["Name", "Host", "Connection", "Login", "Sender", "Security",
                 "587 for STARTTLS, 465 for implicit TLS, 25 for plain.", "Remove the stored password"],
    },
}
#: Words of the other language that must not show: the English names a French page showed before.
ENGLISH_LEFTOVERS = ["Email template", "Email message", "SMTP server", "Recipient email", "Stable name callers use"]


@pytest.mark.parametrize("browser_locale", ["fr-FR", "en-US"])
def test_our_models_and_fields_are_shown_in_the_browser_s_language(
    browser_page, browser_locale, superuser, default_templates
):
    page = browser_page
    template = EmailTemplate.objects.get(key="billing_invoice_monthly")
    variables = template.sample_variables
    [message] = send_mail_template(template.key, "reseller@techconnect.bj", variables, sent_by=superuser)
    assert Message.objects.filter(pk=message.pk, status="sent").exists()
    words = ADMIN_WORDS[browser_locale]

    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", superuser.username)
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.locator("input[type=submit]").click()
    assert page.locator("html").get_attribute("lang") == browser_locale[:2]

    pages = {
        "index": "/admin/",
        "templates": "/admin/notifications/emailtemplate/",
        "template": f"/admin/notifications/emailtemplate/{template.pk}/change/",
        "messages": "/admin/notifications/message/",
        "message": f"/admin/notifications/message/{message.pk}/change/",
        "smtp": "/admin/notifications/smtpserverconfig/add/",
    }
    for name, path in pages.items():
        page.goto(path)
        if name == "template":  # the settings are folded below the wording: open them to read them
            page.locator("#template-settings > summary").click()
        # As shown (column titles are upper-cased by the stylesheet), compared without case.
        text = page.inner_text("#content").replace("\u00a0", " ").lower()
        missing = [word for word in words[name] if word.lower() not in text]
        assert not missing, f"{browser_locale} {path}: {missing} not shown"
        if browser_locale.startswith("fr"):
            leftovers = [word for word in ENGLISH_LEFTOVERS if word.lower() in text]
            assert not leftovers, f"{path}: English left on a French page: {leftovers}"
