"""The API speaks one language at a time (issue 19, part 2): the 403 body, the browsable API's
titles and the OpenAPI descriptions follow the request's language, French or English."""
from __future__ import annotations

import json

import pytest
from django.test import Client

from notifications.tests.support.api import make_user


def _texts(node, found: set[str]) -> set[str]:
    """Every description, summary and title of a schema (examples are data, left out)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("description", "summary", "title") and isinstance(value, str):
                found.add(value)
            elif key not in ("example", "examples"):
                _texts(value, found)
    elif isinstance(node, list):
        for value in node:
            _texts(value, found)
    return found


def _schema(language: str) -> dict:
    answer = Client(headers={"Accept-Language": language}).get("/api/schema/?format=json")
    assert answer.status_code == 200
    return json.loads(answer.content)


#: Texts that read the same in both languages: a JSON shape, a name.
SAME_IN_BOTH = {"", "Test", '{"detail": "stale_version"}', "Message", "Messages", "Description", "Message ID"}


def test_the_schema_is_served_in_the_request_s_language_with_no_english_in_the_french(db):
    french, english = _schema("fr"), _schema("en")
    assert french["info"]["title"] == "API des notifications"
    assert english["info"]["title"] == "Notifications API"
    send = french["paths"]["/api/v1/email/send"]["post"]
    assert send["summary"] == "Envoyer un e-mail à partir d’un modèle à un ou plusieurs destinataires"
    assert send["responses"]["403"]["description"] == "Authentifié, sans la permission."
    untranslated = (_texts(french, set()) & _texts(english, set())) - SAME_IN_BOTH
    assert not untranslated, "\n".join(sorted(untranslated))


@pytest.mark.parametrize(("language", "title", "refusal"), [
    ("fr", "Modèles", "Vous n’avez pas la permission d’effectuer cette action."),
    ("en", "Templates", "You do not have permission to perform this action."),
])
def test_the_browsable_api_s_title_and_the_403_body_follow_the_language(db, language, title, refusal):
    user = make_user("nobody")
    client = Client(headers={"Accept-Language": language})
    client.force_login(user)
    page = client.get("/api/v1/email/templates", headers={"Accept": "text/html"})
    assert page.status_code == 403
    html = page.content.decode()
    assert f"<h1>{title}</h1>" in html
    assert "Template List" not in html
    answer = client.get("/api/v1/email/templates", headers={"Accept": "application/json"})
    assert answer.json()["detail"] == refusal


@pytest.mark.parametrize(("language", "title"), [("fr", "API des notifications"), ("en", "Notifications API")])
def test_the_api_docs_page_is_titled_in_the_request_s_language(db, language, title):
    page = Client(headers={"Accept-Language": language}).get("/api/docs/")
    assert page.status_code == 200
    assert f"<title>{title}</title>" in page.content.decode()
