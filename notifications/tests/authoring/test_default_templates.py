"""The default templates say what 004 and 000 wrote: subjects, and the bilingual invitation."""
from __future__ import annotations

from html.parser import HTMLParser

import pytest

from notifications.models import EmailTemplate
from notifications.authoring.rendering import RenderedEmail, VersionSource, render

pytestmark = pytest.mark.django_db

# 004's "Sujet:" lines with each template's sample_variables put in, written out by hand.
SUBJECTS_004 = {
    "billing_invoice_monthly": "Facture RGZ — février 2026",
    "incident_alert_critical": "⚠️ ALERTE CRITIQUE RGZ — INC-2026-000847",
    "onboarding_welcome": "Bienvenue sur RGZ Access!",
    "onboarding_approved": "✓ Documents approuvés — RGZ Access",
    "cutover_reminder": "Rappel — Checklist cutover Tech Connect SA",
    "rma_confirmation": "Ticket RMA RMA-2026-000123 — LBE5AC-7C4B21D9",
    "sla_credit_notification": "Crédit SLA appliqué — 12500 FCFA",
    "support_ticket_created": "Ticket support #10482 créé",
}
INVITATION_URL = "https://admin-rgz.duckdns.org/accounts/create?token=8f14e45fceea167a5a36dedd4bea2543"


def render_sample(key: str) -> RenderedEmail:
    template = EmailTemplate.objects.get(key=key)
    return render(
        VersionSource.of(template.versions.get(is_active=True)), variables=template.sample_variables,
        required=template.required_variables, optional=template.optional_variables, layout_name=template.layout,
    )


def test_the_eight_004_subjects_render_as_004_wrote_them(default_templates):
    assert {key: render_sample(key).subject for key in SUBJECTS_004} == SUBJECTS_004


class LanguageText(HTMLParser):
    """The body's text and links, each with the language of its nearest `lang` attribute."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, str]] = []
        self.in_body = False
        self.text: list[tuple[str, str]] = []
        self.links: list[tuple[str, str]] = []

    @property
    def lang(self) -> str:
        return self.stack[-1][1] if self.stack else ""

    def handle_starttag(self, tag, attrs) -> None:
        attrs = dict(attrs)
        self.in_body = self.in_body or tag == "body"
        if tag == "a" and self.in_body:
            self.links.append((attrs.get("lang") or self.lang, attrs["href"]))
        if tag not in self.VOID:
            self.stack.append((tag, attrs.get("lang") or self.lang))

    def handle_endtag(self, tag) -> None:
        while self.stack and self.stack.pop()[0] != tag:
            pass

    def handle_data(self, data) -> None:
        if self.in_body and data.strip():
            self.text.append((self.lang, " ".join(data.split())))

    def said_in(self, lang: str) -> str:
        return " | ".join(text for text_lang, text in self.text if text_lang == lang)


ENGLISH = ["Welcome to RGZ Access!", "You have been invited to join RGZ Access!", "Create your account"]
FRENCH = ["Bienvenue sur RGZ Access !", "Tu as été invité à rejoindre RGZ Access !", "Créer votre compte"]


def test_the_invitation_says_it_in_english_then_in_french(default_templates):
    out = render_sample("account_creation_invitation")
    assert out.subject == "Welcome to RGZ Access! / Bienvenue sur RGZ Access !"

    page = LanguageText()
    page.feed(out.html)
    english, french = page.said_in("en"), page.said_in("fr")
    assert {lang for lang, _ in page.text} == {"en", "fr"}
    for phrase in ENGLISH:
        assert phrase in english and phrase not in french, phrase
    for phrase in FRENCH:
        assert phrase in french and phrase not in english, phrase
    card_languages = [lang for lang, text in page.text if any(phrase in text for phrase in ENGLISH + FRENCH)]
    assert card_languages == sorted(card_languages), "the English card comes first, then the French one"
    assert [(lang, href) for lang, href in page.links if href == INVITATION_URL] == [
        ("en", INVITATION_URL), ("fr", INVITATION_URL),
    ]

    english_text, _, french_text = out.text.partition("-" * 40)
    for phrase in ENGLISH:
        assert phrase in english_text and phrase not in french_text, phrase
    for phrase in FRENCH:
        assert phrase in french_text and phrase not in english_text, phrase
    assert f"Create your account: {INVITATION_URL}" in english_text
    assert f"Créer votre compte : {INVITATION_URL}" in french_text


def test_descriptions_say_what_each_template_is_for_in_this_projects_words():
    """No other system's ticket numbers ("(#24)", "#70") or seed-document numbers ("de 000")."""
    import json
    import re
    from pathlib import Path

    from django.conf import settings

    folders = sorted(Path(settings.EMAIL_DEFAULT_TEMPLATES_DIR).glob("*/template.json"))
    assert len(folders) == 9
    for path in folders:
        description = json.loads(path.read_text(encoding="utf-8"))["description"]
        assert len(description) >= 60, path.parent.name
        assert not re.search(r"#\d+|\b00\d\b", description), (path.parent.name, description)
