"""Bad input at the API: a 4xx JSON error naming the field, and no row written."""
from __future__ import annotations

import base64

import pytest

from notifications.access.groups import SENDERS
from notifications.models import EmailAttachment, Message, IdempotencyRecord
from notifications.tests.support.api import ApiClient, create_key, make_user
from notifications.tests.support.files import make_pdf, make_png
from notifications.tests.support.payloads import INCIDENT, INVOICE, WELCOME

pytestmark = pytest.mark.django_db


@pytest.fixture
def sender(default_templates):
    return ApiClient(create_key(make_user("svc", SENDERS)))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def attach(filename="i.pdf", content_type="application/pdf", data=None):
    return {"filename": filename, "content_type": content_type, "data_base64": b64(make_pdf()) if data is None else data}


CASES = {
    "unknown-field": ({**WELCOME, "recipient": "x@y.test"}, 400, "recipient"),
    "bad-address": ({**WELCOME, "to": "not-an-address"}, 400, "to"),
    "one-bad-in-list": ({**WELCOME, "to": ["ok@rgz.bj", "bad@"]}, 400, "to"),
    "empty-to": ({**WELCOME, "to": ""}, 400, "to"),
    "empty-list": ({**WELCOME, "to": []}, 400, "to"),
    "to-number": ({**WELCOME, "to": 42}, 400, "to"),
    "to-object": ({**WELCOME, "to": {"a": 1}}, 400, "to"),
    "missing-to": ({k: v for k, v in WELCOME.items() if k != "to"}, 400, "to"),
    "too-many": ({**WELCOME, "to": [f"u{i}@rgz.bj" for i in range(51)]}, 413, "to"),
    "variables-list": ({**WELCOME, "variables": ["a"]}, 400, "variables"),
    "missing-variable": ({**WELCOME, "variables": {"reseller_name": "x"}}, 400, "variables"),
    "unknown-template": ({**WELCOME, "template_key": "nope"}, 404, "template_key"),
    "bad-base64": ({**INVOICE, "attachments": [attach(data="%%%notbase64")]}, 400, "attachments"),
    "png-as-pdf": ({**INVOICE, "attachments": [attach(data=b64(make_png()))]}, 400, "attachments"),
    "disallowed-type": ({**INVOICE, "attachments": [attach("x.exe", "application/x-msdownload", b64(b"MZ"))]}, 400, "attachments"),
    "forbidden-on-template": ({**INCIDENT, "attachments": [attach()]}, 400, "attachments"),
    "attachment-unknown-field": ({**INVOICE, "attachments": [{**attach(), "size": 1}]}, 400, "attachments"),
    "attachments-not-list": ({**INVOICE, "attachments": "x"}, 400, "attachments"),
    "bad-cc": ({**WELCOME, "cc": "nope"}, 400, "cc"),
    "bad-reply-to": ({**WELCOME, "reply_to": "nope"}, 400, "reply_to"),
    "header-injection": ({"to": "a@rgz.bj", "template_key": "rma_confirmation", "variables": {
        "rma_number": "x\r\nBcc: y@z.test", "serial_number": "1", "status": "2", "link_tracking": "3"}}, 400, "subject"),
}


@pytest.mark.parametrize("body, status, field", CASES.values(), ids=CASES.keys())
def test_bad_send_input_is_a_json_error_naming_the_field(sender, body, status, field):
    response = sender.post("/api/v1/email/send", body)
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    errors = response.json()
    if field:
        assert field in errors, errors
    assert Message.objects.count() == 0 and EmailAttachment.objects.count() == 0


def test_missing_variables_are_all_named(sender):
    response = sender.post("/api/v1/email/send", {**INVOICE, "variables": {"month": "mars"}})
    message = response.json()["variables"][0]
    for name in ("amount_fcfa", "invoice_number", "link_portal", "reseller_name", "year"):
        assert name in message


@pytest.mark.parametrize("raw", ['{"to": ', "not json", "[1, 2]", "null", '"text"'])
def test_malformed_or_non_object_json_is_a_400(sender, raw):
    response = sender.post("/api/v1/email/send", raw=raw)
    assert response.status_code == 400 and response["Content-Type"] == "application/json"
    assert Message.objects.count() == 0


def test_body_past_the_limit_is_a_413(sender, settings):
    settings.API_MAX_BODY_BYTES = 50_000
    body = {**INVOICE, "attachments": [attach(data=b64(make_pdf() + b"0" * 60_000))]}
    response = sender.post("/api/v1/email/send", body)
    assert response.status_code == 413 and "API_MAX_BODY_BYTES" in response.json()["detail"]
    assert Message.objects.count() == 0


def test_attachment_past_its_limit_is_a_413_naming_attachments(sender, settings):
    settings.EMAIL_MAX_ATTACHMENT_SIZE_MB = 0.01
    response = sender.post("/api/v1/email/send", {**INVOICE, "attachments": [attach(data=b64(make_pdf() + b"0" * 20_000))]})
    assert response.status_code == 413 and "attachments" in response.json()
    assert Message.objects.count() == 0


def test_wrong_content_type_is_a_415(sender):
    response = sender.client.post("/api/v1/email/send", data="to=x", content_type="application/x-www-form-urlencoded",
                                  headers=sender.headers)
    assert response.status_code == 415 and response["Content-Type"] == "application/json"


def test_unknown_route_and_method(sender):
    assert sender.get("/api/v1/email/send").status_code == 405
    assert sender.get("/api/v1/email/messages/00000000-0000-0000-0000-000000000000").status_code == 404


def test_same_idempotency_key_answers_the_first_response_and_sends_once(sender):
    headers = {"Idempotency-Key": "invoice-2026-02-techconnect"}
    first = sender.post("/api/v1/email/send", INVOICE, headers=headers)
    second = sender.post("/api/v1/email/send", INVOICE, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert Message.objects.count() == 1
    assert Message.objects.get().idempotency_key == "invoice-2026-02-techconnect"


def test_same_key_with_another_body_is_a_422(sender):
    headers = {"Idempotency-Key": "k1"}
    assert sender.post("/api/v1/email/send", INVOICE, headers=headers).status_code == 201
    other = sender.post("/api/v1/email/send", WELCOME, headers=headers)
    assert other.status_code == 422 and "Idempotency-Key" in other.json()
    assert Message.objects.count() == 1


def test_the_same_key_from_another_api_key_is_independent(default_templates):
    """Scoped per API key, not per user: two keys of one service each send once."""
    user = make_user("svc", SENDERS)
    one, two = ApiClient(create_key(user)), ApiClient(create_key(user))
    headers = {"Idempotency-Key": "shared"}
    first = one.post("/api/v1/email/send", WELCOME, headers=headers)
    second = two.post("/api/v1/email/send", WELCOME, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json()["items"][0]["id"] != second.json()["items"][0]["id"]
    assert Message.objects.count() == 2
    assert IdempotencyRecord.objects.filter(key="shared").count() == 2
    # Each key still answers its own first response to a retry.
    assert one.post("/api/v1/email/send", WELCOME, headers=headers).json() == first.json()
    assert Message.objects.count() == 2


def test_a_refused_request_does_not_burn_its_key(sender):
    headers = {"Idempotency-Key": "retry-me"}
    assert sender.post("/api/v1/email/send", {**WELCOME, "to": "bad"}, headers=headers).status_code == 400
    assert IdempotencyRecord.objects.count() == 0
    assert sender.post("/api/v1/email/send", WELCOME, headers=headers).status_code == 201


def test_clients_are_throttled_with_a_json_429(default_templates, settings):
    from django.core.cache import cache

    cache.clear()
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"api": "3/minute", "send": "2/minute"}}
    client = ApiClient(create_key(make_user("busy", SENDERS)))
    codes = [client.post("/api/v1/email/send", WELCOME).status_code for _ in range(3)]
    assert codes == [201, 201, 429]
    limited = client.post("/api/v1/email/send", WELCOME)
    assert limited.status_code == 429 and int(limited["Retry-After"]) > 0
    assert "60" in limited.json()["detail"]  # says when to come back (in the site's language)
    assert Message.objects.count() == 2
    other = ApiClient(create_key(make_user("quiet", SENDERS)))
    assert other.get("/api/v1/email/templates").status_code == 200
    cache.clear()


def test_unknown_api_route_is_a_json_404(sender):
    response = sender.get("/api/v1/email/nothing-here")
    assert response.status_code == 404 and response["Content-Type"] == "application/json"
