"""Consistency of the API's answers: the language of a send is one the service knows, and
every path under /api/ answers JSON, a 404 included, whatever DEBUG says."""
from __future__ import annotations

import pytest

from notifications.exceptions import TemplateError
from notifications.access.groups import SENDERS
from notifications.models import Message
from notifications.channels.email.sending import send_batch, send_mail_template
from notifications.tests.factories import EmailTemplateFactory
from notifications.tests.support.api import ApiClient, create_key, make_user
from notifications.tests.support.payloads import WELCOME_VARS

pytestmark = pytest.mark.django_db


@pytest.fixture
def sender(default_templates):
    return ApiClient(create_key(make_user("billing", SENDERS)))


def welcome(**changes) -> dict:
    return {"to": "john@techconnect.bj", "template_key": "onboarding_welcome", "variables": WELCOME_VARS, **changes}


# --- language ----------------------------------------------------------------------------------

@pytest.mark.parametrize("language", ["xx", 5, "de", "fr BE", "fr-", "français", True])
def test_an_unknown_language_is_a_400_naming_language_on_send_and_send_batch(sender, language):
    send = sender.post("/api/v1/email/send", welcome(language=language))
    batch = sender.post("/api/v1/email/send-batch", {
        "template_key": "onboarding_welcome", "language": language,
        "items": [{"to": "john@techconnect.bj", "variables": WELCOME_VARS}],
    })
    for response in (send, batch):
        assert response.status_code == 400, response.content
        assert list(response.json()) == ["language", "codes"], response.json()
        assert list(response.json()["codes"]) == ["language"]
    assert Message.objects.count() == 0


def test_the_service_refuses_an_unknown_language_naming_it(default_templates):
    for language in ("xx", 5):
        with pytest.raises(TemplateError) as refused:
            send_mail_template("onboarding_welcome", "john@techconnect.bj", WELCOME_VARS, language=language)
        assert refused.value.field == "language" and "expected one of en, fr" in refused.value.message
        with pytest.raises(TemplateError) as refused:
            send_batch("onboarding_welcome", [{"to": "john@techconnect.bj", "variables": WELCOME_VARS}],
                       language=language)
        assert refused.value.field == "language"
    assert Message.objects.count() == 0


@pytest.mark.parametrize("language, sent_in", [
    ("fr", "fr"), ("fr-BE", "fr"), ("fr_CA", "fr"), ("FR", "fr"), ("en", "fr"), ("en-GB", "fr"), (None, "fr"),
])
def test_known_languages_and_their_regional_variants_are_sent_falling_back_as_before(
    sender, language, sent_in, django_capture_on_commit_callbacks
):
    # onboarding_welcome has a French version only: English falls back to the default language.
    with django_capture_on_commit_callbacks(execute=True):
        response = sender.post("/api/v1/email/send", welcome(language=language))
    assert response.status_code == 201, response.content
    assert Message.objects.get().language == sent_in


def test_a_regional_variant_picks_its_languages_version(db, django_capture_on_commit_callbacks):
    template = EmailTemplateFactory(default_language="fr", versions={
        "fr": {"subject": "Bonjour {{ name }}", "html_content": "<p>Bonjour {{ name }}</p>"},
        "en": {"subject": "Hello {{ name }}", "html_content": "<p>Hello {{ name }}</p>"},
    })
    [message] = send_mail_template(template.key, "a@b.test", {"name": "A"}, language="en-GB")
    assert (message.subject, message.language) == ("Hello A", "en")


# --- JSON 404 under /api/ ----------------------------------------------------------------------

@pytest.mark.parametrize("debug", [True, False], ids=["DEBUG on", "DEBUG off"])
@pytest.mark.parametrize("method, path", [
    ("get", "/api/v1/does-not-exist"),
    ("post", "/api/v1/does-not-exist"),
    ("get", "/api/v2/email/send"),
    ("get", "/api"),
    ("get", "/api/v1/email/templates/billing%20invoice"),  # a key outside [-\w]+
    ("get", "/api/v1/email/templates/billing%25invoice"),
    ("put", "/api/v1/email/templates/billing%25invoice"),
    ("post", "/api/v1/email/templates/a%20b/test"),
    ("get", "/api/v1/email/templates/no_such_template"),  # a well-formed key that does not exist
])
def test_every_path_under_api_answers_a_json_404(sender, settings, debug, method, path):
    settings.DEBUG = debug
    response = sender.request(method, path, {} if method in ("post", "put") else None)
    assert response.status_code == 404, response.content[:300]
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found.", "codes": {"detail": "not_found"}} or list(response.json()) == [
        "detail", "codes"
    ]


def test_outside_api_a_404_stays_a_page(client, settings):
    settings.DEBUG = False
    response = client.get("/no-such-page")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")
