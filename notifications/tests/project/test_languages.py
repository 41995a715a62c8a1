"""One language at a time: French by default, English on request, the same stable `codes` in both.

Every request here is made twice, without `Accept-Language` (the default, French) and with
`Accept-Language: en`; the messages differ, the codes do not.
"""
from __future__ import annotations

import re

import pytest
from django.test import Client

from notifications.access.groups import SENDERS
from notifications.tests.support.api import ApiClient, create_key, make_user
from notifications.tests.support.payloads import WELCOME, WELCOME_VARS

pytestmark = pytest.mark.django_db

SEND = "/api/v1/email/send"


@pytest.fixture
def key(default_templates) -> str:
    return create_key(make_user("sender", SENDERS))


def both(key: str | None, method: str, path: str, body=None, **kwargs):
    """The same request answered in French (no Accept-Language) and in English."""
    french = ApiClient(key, language=None).request(method, path, body, **kwargs)
    english = ApiClient(key, language="en").request(method, path, body, **kwargs)
    assert french.status_code == english.status_code
    if french.status_code >= 400:
        assert french.json()["codes"] == english.json()["codes"], (french.json(), english.json())
    assert french["Content-Language"] == "fr" and english["Content-Language"] == "en"
    return french, english


def test_a_missing_required_field_drf_s_own_message_in_each_language(key):
    french, english = both(key, "POST", SEND, {"to": "john@techconnect.bj"})

    assert french.status_code == 400
    assert french.json()["template_key"] == ["Ce champ est obligatoire."]
    assert english.json()["template_key"] == ["This field is required."]
    assert english.json()["codes"] == {"template_key": ["required"]}


def test_an_unknown_template(key):
    french, english = both(key, "POST", SEND, {**WELCOME, "template_key": "nope"})

    assert french.status_code == 404
    assert french.json()["template_key"] == ["Aucun modèle d’e-mail avec la clé 'nope'."]
    assert english.json()["template_key"] == ["No email template with key 'nope'."]
    assert english.json()["codes"] == {"template_key": ["template_not_found"]}


def test_a_bad_address(key):
    french, english = both(key, "POST", SEND, {**WELCOME, "to": "not-an-address"})

    assert french.status_code == 400
    [fr_message], [en_message] = french.json()["to"], english.json()["to"]
    assert fr_message.startswith("Adresse e-mail 1 invalide ('not-an-address') : ce n’est pas une adresse")
    assert en_message.startswith("Invalid email address 1 ('not-an-address'): it is not a valid email address")
    assert english.json()["codes"] == {"to": ["invalid_address"]}


def test_a_missing_variable_and_an_unknown_field_together_keep_their_own_codes(key):
    french, english = both(key, "POST", SEND, {**WELCOME, "variables": {}, "colour": "red"})

    assert french.status_code == 400
    assert french.json()["colour"] == ["Champ inconnu."] and english.json()["colour"] == ["Unknown field."]
    assert english.json()["codes"] == {"colour": ["unknown_field"]}
    french, english = both(key, "POST", SEND, {**WELCOME, "variables": {"reseller_name": "x"}})
    assert french.json()["variables"][0].startswith("Variables obligatoires manquantes : ")
    assert english.json()["variables"][0].startswith("Missing required variables: ")
    assert english.json()["codes"] == {"variables": ["missing_variables"]}


@pytest.mark.parametrize("authorization", [None, "Token abc", "Basic dXNlcjpwYXNz", "Bearer", "Bearer not-a-key"])
def test_every_401_says_that_a_bearer_key_is_expected(db, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    french, english = both(None, "GET", "/api/v1/email/templates", headers=headers)

    assert french.status_code == 401 and french["WWW-Authenticate"].startswith("Bearer")
    for answer in (french, english):
        assert "'Authorization: Bearer <key>'" in answer.json()["detail"], answer.json()
    assert "envoyez" in french.json()["detail"] or "attendu" in french.json()["detail"]
    assert "send" in english.json()["detail"] or "expected" in english.json()["detail"]
    expected = {
        None: "not_authenticated",
        "Token abc": "unsupported_authorization_scheme",
        "Basic dXNlcjpwYXNz": "unsupported_authorization_scheme",
        "Bearer": "malformed_authorization",
        "Bearer not-a-key": "invalid_api_key",
    }[authorization]
    assert english.json()["codes"] == {"detail": expected}


def test_no_credentials_is_french_by_default_and_english_on_request(db):
    french, english = both(None, "GET", "/api/v1/email/templates")

    assert french.json()["detail"].startswith("Informations d’authentification non fournies")
    assert english.json()["detail"].startswith("Authentication credentials were not provided")


def test_a_batch_item_s_errors_carry_their_codes(key):
    items = [{"to": "a@techconnect.bj", "variables": WELCOME_VARS}, {"to": "bad", "variables": WELCOME_VARS}]
    french, english = both(key, "POST", "/api/v1/email/send-batch",
                           {"template_key": "onboarding_welcome", "items": items})

    assert french.status_code == 201
    refused = [item for item in english.json()["items"] if "errors" in item]
    assert [(item["index"], item["codes"]) for item in refused] == [(1, {"to": ["invalid_address"]})]
    french_refused = [item for item in french.json()["items"] if "errors" in item]
    assert french_refused[0]["errors"]["to"][0].startswith("Adresse e-mail 1 invalide")


def test_a_batch_with_no_sendable_item_is_a_400_whose_codes_follow_its_shape(key):
    items = [{"to": "bad", "variables": WELCOME_VARS}, {"to": "a@techconnect.bj", "variables": {}}]
    french, english = both(key, "POST", "/api/v1/email/send-batch",
                           {"template_key": "onboarding_welcome", "items": items})

    assert french.status_code == 400
    assert english.json()["codes"] == {"items": [
        {"index": 0, "errors": {"to": ["invalid_address"]}},
        {"index": 1, "errors": {"variables": ["missing_variables"]}},
    ]}
    assert english.json()["items"][0]["codes"] == {"to": ["invalid_address"]}


def test_answers_made_before_any_view_have_codes_and_the_request_s_language(settings):
    settings.API_MAX_BODY_BYTES = 100
    french, english = both(None, "POST", SEND, raw="x" * 101)
    assert french.status_code == 413 and english.json()["codes"] == {"detail": "body_too_large"}
    assert french.json()["detail"].startswith("Le corps de la requête dépasse les 100 octets")
    assert english.json()["detail"].startswith("The request body is larger than the 100 bytes")

    french, english = both(None, "GET", "/api/v1/email/messages?to=a%00b")
    assert french.status_code == 400 and english.json()["codes"] == {"to": ["unstorable_text"]}
    assert french.json()["to"][0].startswith("Le paramètre de requête contient un caractère NUL")

    french, english = both(None, "POST", SEND, raw='{"to": "a\\u0000b@x.bj"}')
    assert french.status_code == 400 and english.json()["codes"] == {"to": ["unstorable_text"]}
    assert english.json()["to"][0].startswith("to contains a NUL character")


def test_a_path_no_route_matches_is_a_json_404_with_its_code(db):
    french, english = both(None, "POST", "/api/v1/nothing-here")

    assert french.status_code == 404
    assert (french.json()["detail"], english.json()["detail"]) == ("Introuvable.", "Not found.")
    assert english.json()["codes"] == {"detail": "not_found"}


def test_django_s_404_and_our_own_messages_under_the_api_are_translated_too(key):
    missing = "/api/v1/email/messages/00000000-0000-0000-0000-000000000000"
    french, english = both(key, "GET", missing)
    assert french.status_code == 404 and english.json()["codes"] == {"detail": "not_found"}
    assert (french.json()["detail"], english.json()["detail"]) == ("Introuvable.", "Not found.")

    french, english = both(key, "GET", "/api/v1/email/messages/not-a-uuid")
    assert (french.json()["detail"], english.json()["detail"]) == (
        "Aucun message avec cet identifiant.", "No message with this id.",
    )


def test_a_regional_accept_language_falls_back_to_its_language_and_others_to_french(key):
    body = {**WELCOME, "template_key": "nope"}
    for header, language in (("en-GB,en;q=0.9", "en"), ("fr-BE", "fr"), ("de", "fr"), ("de, en;q=0.5", "en")):
        response = Client().post(SEND, body, content_type="application/json",
                                 headers={"Authorization": f"Bearer {key}", "Accept-Language": header})
        assert response["Content-Language"] == language, header
        assert response.json()["codes"] == {"template_key": ["template_not_found"]}


def codes_in_source() -> dict[str, str]:
    """Every code our code can answer: `code = "..."` class attributes, `code="..."` arguments,
    the codes written into JSON answers (`"codes": {...}`, `detail_body(message, "...")`)."""
    import ast
    from pathlib import Path

    from django.conf import settings

    found: dict[str, str] = {}
    for path in sorted(Path(settings.BASE_DIR, "notifications").rglob("*.py")):
        if "tests" in path.parts or "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            values: list[ast.AST] = []
            assigned = isinstance(node, ast.Assign) and any(
                getattr(target, "id", None) in ("code", "default_code") for target in node.targets
            )
            if assigned or (isinstance(node, ast.keyword) and node.arg == "code"):
                values.append(node.value)
            elif isinstance(node, ast.Dict):
                values += [v for k, v in zip(node.keys, node.values, strict=True)
                           if isinstance(k, ast.Constant) and k.value == "codes"]
            elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "detail_body" and len(node.args) == 2:
                values.append(node.args[1])
            for value in values:
                for constant in ast.walk(value):
                    if isinstance(constant, ast.Constant) and isinstance(constant.value, str):
                        found.setdefault(constant.value, f"{path.name}:{node.lineno}")
    return found


def test_every_code_the_service_answers_is_documented_in_error_codes_md():
    from pathlib import Path

    from django.conf import settings

    from notifications import exceptions

    documented = set(re.findall(r"`([a-z0-9_]+)`", Path(settings.BASE_DIR, "docs", "ERROR_CODES.md").read_text()))
    codes = codes_in_source()
    assert {"invalid_address", "not_found", "body_too_large", "invalid_api_key"} <= set(codes)
    undocumented = {code: where for code, where in codes.items() if code not in documented}
    assert not undocumented, f"add these codes to docs/ERROR_CODES.md: {undocumented}"
    # Each error class of ours names its own code: a subclass never answers its parent's by mistake.
    classes = [c for c in vars(exceptions).values() if isinstance(c, type) and issubclass(c, exceptions.NotificationError)]
    assert all("code" in vars(c) for c in classes), [c.__name__ for c in classes if "code" not in vars(c)]
    assert len({c.code for c in classes}) == len(classes)
