"""POST /api/v1/email/send-batch: a mail merge with per-item errors (API.md)."""
from __future__ import annotations

import base64
import hashlib

import pytest
from django.core import mail

from notifications.access.groups import SENDERS
from notifications.models import AttachmentBlob, EmailAttachment, Message, Status
from notifications.tests.support.api import ApiClient, assert_matches_schema, create_key, make_user
from notifications.tests.support.files import make_pdf
from notifications.tests.support.payloads import INVOICE_VARS

pytestmark = pytest.mark.django_db
PATH = "/api/v1/email/send-batch"


@pytest.fixture
def sender(default_templates):
    return ApiClient(create_key(make_user("billing", SENDERS)))


def invoice_item(to: str, month: str, **changes) -> dict:
    return {"to": to, "variables": {**INVOICE_VARS, "month": month, **changes}}


def test_each_item_is_rendered_with_its_own_variables_and_bad_items_are_reported(
    sender, django_capture_on_commit_callbacks
):
    pdf = make_pdf("conditions générales")
    body = {
        "template_key": "billing_invoice_monthly",
        "items": [
            invoice_item("a@techconnect.bj", "janvier"),
            {"to": "b@techconnect.bj", "variables": {"month": "février"}},
            invoice_item("not-an-address", "mars"),
            invoice_item("c@techconnect.bj, d@techconnect.bj", "avril"),
        ],
        "attachments": [{"filename": "cgv.pdf", "content_type": "application/pdf",
                         "data_base64": base64.b64encode(pdf).decode()}],
        "source_endpoint": "billing",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = sender.post(PATH, body)
    assert response.status_code == 201, response.content
    assert_matches_schema("POST", PATH, response)
    items = response.json()["items"]
    accepted = [i for i in items if "id" in i]
    refused = {i["index"]: i["errors"] for i in items if "errors" in i}
    assert [(i["index"], i["to"]) for i in accepted] == [
        (0, "a@techconnect.bj"), (3, "c@techconnect.bj"), (3, "d@techconnect.bj")]
    assert "reseller_name" in refused[1]["variables"][0] and "amount_fcfa" in refused[1]["variables"][0]
    assert "not-an-address" in refused[2]["to"][0]

    subjects = dict(Message.objects.values_list("address", "subject"))
    assert subjects == {"a@techconnect.bj": "Facture RGZ — janvier 2026", "c@techconnect.bj": "Facture RGZ — avril 2026",
                        "d@techconnect.bj": "Facture RGZ — avril 2026"}
    assert Message.objects.filter(status=Status.SENT).count() == 3 and len(mail.outbox) == 3
    assert EmailAttachment.objects.count() == 3 and AttachmentBlob.objects.get().pk == hashlib.sha256(pdf).hexdigest()


def test_a_batch_where_no_item_can_be_sent_is_a_400_naming_each_item(sender):
    response = sender.post(PATH, {"template_key": "billing_invoice_monthly",
                                  "items": [{"to": "bad"}, {"to": "a@rgz.bj", "variables": {}, "extra": 1}]})
    assert response.status_code == 400
    errors = {item["index"]: item["errors"] for item in response.json()["items"]}
    assert "to" in errors[0] and "extra" in errors[1]
    assert Message.objects.count() == 0


@pytest.mark.parametrize(
    "body, status, field",
    [
        ({"template_key": "nope", "items": [{"to": "a@rgz.bj"}]}, 404, "template_key"),
        ({"template_key": "billing_invoice_monthly", "items": []}, 400, "items"),
        ({"template_key": "billing_invoice_monthly", "items": "x"}, 400, "items"),
        ({"template_key": "billing_invoice_monthly", "items": ["x"]}, 400, "items"),
        ({"template_key": "billing_invoice_monthly", "items": [{"to": "a@rgz.bj"}], "cc": "x"}, 400, "cc"),
        ({"template_key": "incident_alert_critical", "items": [{"to": "a@rgz.bj"}],
          "attachments": [{"filename": "a.pdf", "content_type": "application/pdf",
                           "data_base64": base64.b64encode(make_pdf()).decode()}]}, 400, "attachments"),
    ],
    ids=["unknown-template", "empty", "not-a-list", "item-not-object", "unknown-field", "attachments-forbidden"],
)
def test_bad_batches_write_nothing(sender, body, status, field):
    response = sender.post(PATH, body)
    assert response.status_code == status, response.content
    assert field in response.json()
    assert Message.objects.count() == 0


def test_a_retried_batch_with_its_idempotency_key_sends_nothing_more(sender):
    body = {"template_key": "billing_invoice_monthly", "items": [invoice_item("a@rgz.bj", "juin")]}
    headers = {"Idempotency-Key": "merge-juin"}
    first = sender.post(PATH, body, headers=headers)
    second = sender.post(PATH, body, headers=headers)
    assert first.status_code == second.status_code == 201 and first.json() == second.json()
    assert Message.objects.count() == 1


def test_only_senders_may_merge(default_templates):
    body = {"template_key": "billing_invoice_monthly", "items": [invoice_item("a@rgz.bj", "juin")]}
    assert ApiClient().post(PATH, body).status_code == 401
    assert ApiClient(create_key(make_user("nobody"))).post(PATH, body).status_code == 403
