"""Input that is merely bad is a 4xx naming where it is, never a 500, and writes nothing:
NUL characters (PostgreSQL stores them in neither text nor jsonb), JSON nested past
`API_MAX_JSON_DEPTH`, bodies past `API_MAX_BODY_BYTES`, values longer than their column.

Run on SQLite and on PostgreSQL (DATABASE_URL): the NUL and column cases were 500s there only.
"""
from __future__ import annotations

import base64
import json

import pytest
from django.test import Client

from notifications.exceptions import NestingTooDeep, NotificationError, UnstorableText, ValueTooLong
from notifications.access.groups import SENDERS, TEMPLATE_EDITORS
from notifications.models import Message, EmailTemplateVersion, IdempotencyRecord
from notifications.channels.email.sending import send_batch, send_mail_template, send_simple_mail
from notifications.tests.support.api import ApiClient, create_key, make_user
from notifications.tests.support.payloads import INVOICE, INVOICE_VARS, WELCOME, WELCOME_VARS

pytestmark = pytest.mark.django_db

SEND = "/api/v1/email/send"
BATCH = "/api/v1/email/send-batch"


@pytest.fixture
def sender(default_templates):
    return ApiClient(create_key(make_user("svc", SENDERS)))


def nested(depth: int) -> str:
    """JSON text of `depth` arrays one inside the other (`[[1]]` is 2)."""
    return "[" * depth + "1" + "]" * depth


def with_raw(body: dict, raw: str) -> str:
    """`body` as JSON text with the placeholder value "RAW" replaced by `raw`."""
    return json.dumps(body).replace('"RAW"', raw)


def assert_refused(response, status: int, field: str, *words: str) -> list[str]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    errors = response.json()
    assert field in errors, errors
    for word in words:
        assert word in " ".join(errors[field]), errors
    assert Message.objects.count() == 0
    return errors[field]


# --- NUL -------------------------------------------------------------------------------------

NUL_BODIES = {
    "variable-used": ({**WELCOME, "variables": {**WELCOME_VARS, "reseller_name": "Tech\x00Connect"}},
                      "variables", "variables.reseller_name"),
    "variable-unused": ({**WELCOME, "variables": {**WELCOME_VARS, "note": ["ok", {"x": "a\x00"}]}},
                        "variables", "variables.note[1].x"),
    "variable-name": ({**WELCOME, "variables": {**WELCOME_VARS, "na\x00me": "x"}}, "variables", "A name in variables"),
    "source-endpoint": ({**WELCOME, "source_endpoint": "crm\x00"}, "source_endpoint", "source_endpoint"),
    "template-key": ({**WELCOME, "template_key": "onboarding_welcome\x00"}, "template_key", "template_key"),
    "address": ({**WELCOME, "to": "john\x00@techconnect.bj"}, "to", "NUL"),
    "field-name": ({**WELCOME, "x\x00": 1}, "body", "A name in body"),
}


@pytest.mark.parametrize("body, field, where", NUL_BODIES.values(), ids=NUL_BODIES.keys())
def test_a_nul_anywhere_in_a_send_is_a_400_naming_where(sender, body, field, where):
    assert_refused(sender.post(SEND, body), 400, field, where, "U+0000")


def test_a_nul_in_one_batch_item_refuses_the_batch_naming_the_item(sender):
    items = [{"to": "a@rgz.bj", "variables": INVOICE_VARS},
             {"to": "b@rgz.bj", "variables": {**INVOICE_VARS, "month": "ju\x00in"}}]
    response = sender.post(BATCH, {"template_key": "billing_invoice_monthly", "items": items})
    assert_refused(response, 400, "items", "items[1].variables.month", "U+0000")


def test_a_nul_in_a_new_template_version_is_a_400(default_templates):
    editor = ApiClient(create_key(make_user("editor", TEMPLATE_EDITORS)))
    versions = EmailTemplateVersion.objects.count()
    response = editor.put("/api/v1/email/templates/onboarding_welcome",
                          {"subject": "Bienvenue\x00", "html_content": "<p>{{ reseller_name }}</p>"})
    assert response.status_code == 400 and "subject" in response.json(), response.content
    assert EmailTemplateVersion.objects.count() == versions


def test_an_escaped_backslash_before_u0000_is_no_nul(sender):
    """`\\\\u0000` in JSON is a backslash and the text u0000: storable, so sent."""
    body = with_raw({**WELCOME, "variables": {**WELCOME_VARS, "note": "RAW"}}, r'"C:\\u0000"')
    response = sender.post(SEND, raw=body)
    assert response.status_code == 201, response.content
    assert Message.objects.get().variables["note"] == "C:\\u0000"


# --- nesting -----------------------------------------------------------------------------------

def test_a_body_nested_a_thousand_deep_is_a_400_naming_the_field(sender):
    response = sender.post(SEND, raw=with_raw(WELCOME, "RAW").replace('"john@techconnect.bj"', nested(1000)))
    assert_refused(response, 400, "to", "API_MAX_JSON_DEPTH")


def test_variables_nested_a_thousand_deep_are_a_400_naming_where(sender):
    response = sender.post(SEND, raw=with_raw({**WELCOME, "variables": {**WELCOME_VARS, "tree": "RAW"}}, nested(1000)))
    assert_refused(response, 400, "variables", "variables.tree[0][0]", "API_MAX_JSON_DEPTH")


def test_a_batch_nested_a_thousand_deep_is_a_400(sender):
    body = {"template_key": "billing_invoice_monthly", "items": [{"to": "a@rgz.bj", "variables": "RAW"}]}
    response = sender.post(BATCH, raw=with_raw(body, "{" + '"a": {' * 999 + "}" * 1000))
    assert_refused(response, 400, "items", "items[0].variables.a.a", "API_MAX_JSON_DEPTH")


def test_nesting_up_to_the_limit_is_accepted_and_one_more_is_not(sender, settings):
    settings.API_MAX_JSON_DEPTH = 6
    # The body is level 1, variables 2, note 3: four more arrays reach 6.
    accepted = sender.post(SEND, raw=with_raw({**WELCOME, "variables": {**WELCOME_VARS, "note": "RAW"}}, nested(4)))
    assert accepted.status_code == 201, accepted.content
    Message.objects.all().delete()
    refused = sender.post(SEND, raw=with_raw({**WELCOME, "variables": {**WELCOME_VARS, "note": "RAW"}}, nested(5)))
    assert_refused(refused, 400, "variables", "nested deeper than 6 levels")


def test_brackets_inside_strings_do_not_count(sender, settings):
    settings.API_MAX_JSON_DEPTH = 4
    response = sender.post(SEND, {**WELCOME, "variables": {**WELCOME_VARS, "note": "[[[[[{{{{{ \" [[[["}})
    assert response.status_code == 201, response.content


def json_attachment(content: bytes) -> dict:
    return {"filename": "data.json", "content_type": "application/json",
            "data_base64": base64.b64encode(content).decode()}


def test_a_json_attachment_nested_five_thousand_deep_is_a_400_naming_attachments(sender):
    body = {**INVOICE, "attachments": [json_attachment(nested(5000).encode())]}
    assert_refused(sender.post(SEND, body), 400, "attachments", "data.json", "API_MAX_JSON_DEPTH")


def test_a_json_attachment_within_the_limit_is_sent(sender):
    response = sender.post(SEND, {**INVOICE, "attachments": [json_attachment(b'{"lines": [[1, 2], [3, 4]]}')]})
    assert response.status_code == 201, response.content
    assert Message.objects.get().attachments.get().filename == "data.json"


# --- body size -------------------------------------------------------------------------------

def test_a_body_past_the_limit_is_a_413_even_where_django_would_refuse_it_first(sender, settings):
    """Content-Length past both limits: answered before Django's RequestDataTooBig can be raised."""
    settings.API_MAX_BODY_BYTES = settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2_000
    response = sender.post(SEND, {**WELCOME, "variables": {**WELCOME_VARS, "note": "x" * 3_000}})
    detail = response.json()["detail"]
    assert response.status_code == 413 and "API_MAX_BODY_BYTES" in detail and "2,000" in detail
    assert Message.objects.count() == 0


def test_djangos_own_upload_limit_is_a_413_naming_it(sender, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2_000
    response = sender.post(SEND, {**WELCOME, "variables": {**WELCOME_VARS, "note": "x" * 3_000}})
    assert response.status_code == 413 and "DATA_UPLOAD_MAX_MEMORY_SIZE" in response.json()["detail"]
    assert Message.objects.count() == 0


def test_a_body_within_the_limit_goes_through(sender, settings):
    body = json.dumps({**WELCOME, "variables": {**WELCOME_VARS, "note": "x"}})
    settings.API_MAX_BODY_BYTES = settings.DATA_UPLOAD_MAX_MEMORY_SIZE = len(body.encode())
    assert sender.post(SEND, raw=body).status_code == 201


def test_the_admin_gets_the_same_413(default_templates, settings):
    settings.API_MAX_BODY_BYTES = settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2_000
    client = Client()
    response = client.post("/admin/login/", {"username": "x" * 3_000, "password": "y"})
    assert response.status_code == 413 and "API_MAX_BODY_BYTES" in response.json()["detail"]


def test_a_content_length_that_is_no_number_is_a_400(sender):
    response = sender.client.generic("POST", SEND, json.dumps(WELCOME), content_type="application/json",
                                     headers=sender.headers, CONTENT_LENGTH="12abc")
    assert response.status_code == 400 and "Content-Length" in response.json()["detail"]


# --- column lengths --------------------------------------------------------------------------

def long_address() -> str:
    address = "a" * 60 + "@" + ".".join(["b" * 60] * 4) + ".bj"
    assert len(address) > 254
    return address


def test_a_300_character_idempotency_key_is_a_400(sender):
    response = sender.post(SEND, WELCOME, headers={"Idempotency-Key": "k" * 300})
    assert_refused(response, 400, "Idempotency-Key")
    assert IdempotencyRecord.objects.count() == 0


def test_a_300_character_source_endpoint_is_a_400(sender):
    assert_refused(sender.post(SEND, {**WELCOME, "source_endpoint": "s" * 300}), 400, "source_endpoint")


def test_an_address_longer_than_its_column_is_a_400_naming_it(sender):
    assert_refused(sender.post(SEND, {**WELCOME, "to": long_address()}), 400, "to")
    assert_refused(sender.post(SEND, {**WELCOME, "cc": [long_address()]}), 400, "cc")


def test_an_address_longer_than_its_column_refuses_only_its_batch_item(sender):
    items = [{"to": long_address(), "variables": INVOICE_VARS}, {"to": "ok@rgz.bj", "variables": INVOICE_VARS}]
    response = sender.post(BATCH, {"template_key": "billing_invoice_monthly", "items": items})
    assert response.status_code == 201, response.content
    refused, sent = response.json()["items"]
    assert refused["index"] == 0 and "to" in refused["errors"]
    assert sent["index"] == 1 and sent["to"] == "ok@rgz.bj"
    assert list(Message.objects.values_list("address", flat=True)) == ["ok@rgz.bj"]


# --- from Python ---------------------------------------------------------------------------------

def self_containing() -> list:
    value: list = []
    value.append(value)
    return value


PYTHON_CASES = {
    "nul-value": (dict(variables={**WELCOME_VARS, "reseller_name": "a\x00"}), UnstorableText, "variables"),
    "nul-unused": (dict(variables={**WELCOME_VARS, "extra": {"deep": ["\x00"]}}), UnstorableText, "variables"),
    "nul-name": (dict(variables={**WELCOME_VARS, "\x00": 1}), UnstorableText, "variables"),
    "deep": (dict(variables={**WELCOME_VARS, "tree": json.loads(nested(200))}), NestingTooDeep, "variables"),
    "cycle": (dict(variables={**WELCOME_VARS, "loop": self_containing()}), NestingTooDeep, "variables"),
    "long-source": (dict(source_endpoint="s" * 300), ValueTooLong, "source_endpoint"),
    "long-key": (dict(idempotency_key="k" * 300), ValueTooLong, "idempotency_key"),
    "nul-key": (dict(idempotency_key="k\x00"), UnstorableText, "idempotency_key"),
}


@pytest.mark.parametrize("changes, error, field", PYTHON_CASES.values(), ids=PYTHON_CASES.keys())
def test_send_mail_template_refuses_what_cannot_be_stored(default_templates, changes, error, field):
    arguments = {"variables": WELCOME_VARS, **changes}
    with pytest.raises(error) as caught:
        send_mail_template("onboarding_welcome", "john@techconnect.bj", **arguments)
    assert caught.value.field == field and caught.value.status_code == 400
    assert Message.objects.count() == 0


def test_send_batch_from_python_refuses_only_the_item_with_a_nul(default_templates):
    results = send_batch("billing_invoice_monthly", [
        {"to": "a@rgz.bj", "variables": {**INVOICE_VARS, "month": "\x00"}},
        {"to": "b@rgz.bj", "variables": INVOICE_VARS},
    ])
    assert "U+0000" in results[0].errors["variables"][0] and not results[0].messages
    assert [m.address for m in results[1].messages] == ["b@rgz.bj"]
    assert Message.objects.count() == 1


def test_send_simple_mail_refuses_a_nul_in_its_text(db):
    with pytest.raises(UnstorableText) as caught:
        send_simple_mail("a@rgz.bj", "Subject", "Body\x00")
    assert caught.value.field == "text" and Message.objects.count() == 0


def test_a_template_whose_output_holds_a_nul_is_refused_at_send(default_templates):
    from notifications.authoring.versions import create_template

    create_template(key="nul_output", versions={"fr": {"subject": "S", "html_content": '<p>a{{ "\\x00" }}b</p>'}})
    with pytest.raises(NotificationError) as caught:
        send_mail_template("nul_output", "a@rgz.bj")
    assert caught.value.field == "template" and "U+0000" in caught.value.message
    assert Message.objects.count() == 0


# --- the admin -----------------------------------------------------------------------------------

@pytest.mark.parametrize("field, value, says", [
    # Mappings are name / value rows (admin_editor_forms.py); a value that is JSON is parsed.
    ("sample_variables", [("month", nested(3000))], "Row 1: Nested deeper than 32 levels (API_MAX_JSON_DEPTH)"),
    ("optional_variables", [("note", nested(3000))], "Row 1: Nested deeper than 32 levels (API_MAX_JSON_DEPTH)"),
    ("sample_variables", [("month", "f\x00vrier")], "sample_variables.month contains a NUL"),
    ("optional_variables", [("note\x00", "x")], "Row 1: 'note\\x00' is not a variable name"),
])
def test_the_admin_template_form_refuses_deep_or_nul_json_as_a_form_error(
    admin_client, default_templates, field, value, says
):
    from django.urls import reverse

    from notifications.models import EmailTemplate
    from notifications.tests.support.admin_forms import template_form

    template = EmailTemplate.objects.get(key="billing_invoice_monthly")
    before = EmailTemplate.objects.filter(pk=template.pk).values().get()
    url = reverse("admin:notifications_emailtemplate_change", args=[template.pk])
    response = admin_client.post(url, template_form(template, **{field: value}))
    assert response.status_code == 200, response.content.decode()[:2000]
    errors = response.context["adminform"].form.errors
    assert says in " ".join(errors[field]), errors
    assert EmailTemplate.objects.filter(pk=template.pk).values().get() == before


def test_a_template_saved_from_python_refuses_a_nul_in_its_samples(db):
    from django.core.exceptions import ValidationError

    from notifications.authoring.versions import create_template

    with pytest.raises(ValidationError) as caught:
        create_template(key="nul_sample", required_variables=["name"], sample_variables={"name": "a\x00"},
                        versions={"fr": {"subject": "S", "html_content": "<p>{{ name }}</p>"}})
    assert "U+0000" in " ".join(caught.value.message_dict["sample_variables"])


def test_a_nul_in_a_query_parameter_is_a_400_naming_it(sender, admin_client):
    response = sender.get("/api/v1/email/messages?to=a%00b@rgz.bj")
    assert response.status_code == 400 and "U+0000" in response.json()["to"][0]
    response = admin_client.get("/admin/notifications/message/?q=%00")
    assert response.status_code == 400 and "q" in response.json()


@pytest.mark.parametrize("text, max_depth, path", [
    ('{"a": [1, {"b": 2}]}', 3, None),
    ('{"a": [1, {"b": [2]}]}', 3, ["a", 1, "b"]),
    ('{"k\\"]]": {"x": "[[[[\\\\"}}', 2, None),        # escaped quotes and brackets inside strings
    ('{"k\\"{": [[[1]]]}', 2, ['k"{', 0]),
    ("[[[1]]]", 2, [0, 0]),
    ('{"a": 1}', 0, []),
])
def test_the_deepest_path_is_measured_on_the_text(text, max_depth, path):
    from notifications.jsoninput import deepest_path

    assert deepest_path(text, max_depth=max_depth) == path
