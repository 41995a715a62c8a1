"""API error bodies carry our own messages and stable codes, never a Python exception's text
(issue 16: `JSONDecodeError…`, `UnicodeDecodeError…`, `'int' object has no attribute 'get'`).

Every request here is checked by conftest's `_no_exception_text_in_4xx_answers`, as are the
rest of the hostile input corpus (`HOSTILE_CORPUS`); these add the shapes the attack used,
sent to every API route that takes a body, and check the detector itself.
"""
from __future__ import annotations

import pytest

from notifications.access.groups import ADMINISTRATORS
from notifications.models import Message
from notifications.tests.support.api import ApiClient, create_key, make_user
from notifications.tests.support.leaks import leaks

pytestmark = pytest.mark.django_db

ROUTES = [
    ("POST", "/api/v1/email/send"),
    ("POST", "/api/v1/email/send-batch"),
    ("POST", "/api/v1/email/templates/billing_invoice_monthly/test"),
    ("PUT", "/api/v1/email/templates/billing_invoice_monthly"),
]
BODIES = {
    "truncated": b'{"to": ',
    "not json": b"not json",
    "latin-1": '{"to": "é"}'.encode("latin-1"),
    "invalid utf-8": b'{"to": "\xff\xfe"}',
    "a number": b"7",
    "a list of numbers": b"[1, 2]",
    "numbers for objects": b'{"to": 1, "template_key": 2, "variables": 3, "items": [1, 2], "attachments": [1]}',
    "lists for strings": b'{"to": [[1]], "template_key": [], "variables": [], "cc": {"a": 1}, "subject": []}',
    "NaN": b'{"to": "a@b.c", "template_key": "x", "variables": {"n": NaN}}',
    "a lone surrogate": b'{"to": "\\ud800@example.com", "template_key": "x"}',
    "huge number": b'{"to": "a@b.c", "template_key": "billing_invoice_monthly", "send_at": 1e400}',
    "bad attachment": b'{"to": "a@b.c", "template_key": "x", "attachments": [{"filename": 1, "content": "%%%"}]}',
}


@pytest.fixture
def administrator(default_templates):
    return ApiClient(create_key(make_user("root", ADMINISTRATORS)))


@pytest.mark.parametrize("language", ["en", "fr"])
@pytest.mark.parametrize("route", ROUTES, ids=[path for _, path in ROUTES])
def test_hostile_bodies_get_our_messages_and_codes(administrator, route, language):
    method, path = route
    client = ApiClient(administrator.headers["Authorization"].split()[1], language=language)
    for name, raw in BODIES.items():
        response = client.request(method, path, raw=raw)
        assert 400 <= response.status_code < 500, (name, response.status_code, response.content)
        body = response.json()
        assert body["codes"], name
        assert not leaks(response.content.decode()), (name, response.content)
    assert not Message.objects.exists()


def test_malformed_json_says_where_in_our_words(administrator):
    body = administrator.post("/api/v1/email/send", raw='{"to": "a@b.c",\n  "template_key": }').json()
    assert body == {"detail": "The body is not valid JSON (line 2, column 19).", "codes": {"detail": "parse_error"}}
    french = ApiClient(administrator.headers["Authorization"].split()[1], language="fr")
    assert french.post("/api/v1/email/send", raw=b"\xff").json()["detail"] == (
        "Le corps n’est pas du texte UTF-8 (à l’octet 0).")


@pytest.mark.parametrize(("text", "found"), [
    ("JSON parse error - Expecting value: line 1 column 1 (char 0)", ["Expecting value: line"]),
    ("'utf-8' codec can't decode byte 0xff in position 0", ["codec can't decode"]),
    ("'int' object has no attribute 'get'", ["object has no attribute"]),
    ("<urlopen error [Errno 111] Connection refused>", ["Errno ", "urlopen error"]),
    ("UnicodeDecodeError: invalid start byte", ["UnicodeDecodeError"]),
    ("botocore.exceptions.NoCredentialsError", ["NoCredentialsError"]),
    ("Retry later: Empty values are refused.", []),
    ("The body is not valid JSON (line 2, column 19).", []),
])
def test_the_detector_finds_exception_text_and_passes_our_messages(text, found):
    assert leaks(text) == found
