"""004's curl examples, sent as JSON with a key from `create_api_key`; bodies match the schema."""
from __future__ import annotations

import base64
import hashlib

import pytest

from notifications.access.groups import ADMINISTRATORS, SENDERS, TEMPLATE_EDITORS
from notifications.models import Message, EmailTemplate, Status
from notifications.tests.support.api import ApiClient, assert_matches_schema, create_key, make_user
from notifications.tests.support.files import make_pdf
from notifications.tests.support.payloads import INCIDENT, INVOICE, TEST_RENDER, WELCOME

pytestmark = pytest.mark.django_db

@pytest.fixture
def sender(default_templates):
    return ApiClient(create_key(make_user("billing-service", SENDERS)))


@pytest.fixture
def admin(default_templates):
    return ApiClient(create_key(make_user("admin-token", ADMINISTRATORS)))


def test_invoice_with_real_pdf_reaches_smtp_with_the_same_bytes(sender, smtp_backend, django_capture_on_commit_callbacks):
    pdf = make_pdf("Facture INV-2026-0001")
    body = {**INVOICE, "attachments": [{
        "filename": "invoice_2026-02.pdf", "content_type": "application/pdf",
        "data_base64": base64.b64encode(pdf).decode(),
    }]}
    with django_capture_on_commit_callbacks(execute=True):
        response = sender.post("/api/v1/email/send", body)
    assert response.status_code == 201, response.content
    assert_matches_schema("POST", "/api/v1/email/send", response)
    [item] = response.json()["items"]
    assert item["to"] == "reseller@techconnect.bj" and response.json()["total"] == 1
    [received] = smtp_backend.wait_for(1)
    [attachment] = list(received.message.iter_attachments())
    assert hashlib.sha256(attachment.get_content()).hexdigest() == hashlib.sha256(pdf).hexdigest()
    assert received.message["Subject"] == "Facture RGZ — février 2026"
    message = Message.objects.get(pk=item["id"])
    assert message.status == Status.SENT and message.source_endpoint == "api"
    assert message.sent_by.username == "billing-service"


def test_incident_alert_to_two_addresses(sender, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = sender.post("/api/v1/email/send", INCIDENT)
    assert response.status_code == 201, response.content
    assert_matches_schema("POST", "/api/v1/email/send", response)
    assert sorted(i["to"] for i in response.json()["items"]) == ["noc@rgz.bj", "reseller@techconnect.bj"]


def test_onboarding_welcome_with_trailing_slash_too(sender):
    for path in ("/api/v1/email/send", "/api/v1/email/send/"):
        response = sender.post(path, WELCOME)
        assert response.status_code == 201, (path, response.content)
        assert_matches_schema("POST", path, response)


def test_list_templates_and_filter_by_category(sender):
    response = sender.get("/api/v1/email/templates")
    assert response.status_code == 200
    assert_matches_schema("GET", "/api/v1/email/templates", response)
    body = response.json()
    assert body["total"] == EmailTemplate.objects.count() == 9
    invoice = next(i for i in body["items"] if i["key"] == "billing_invoice_monthly")
    assert invoice == {**invoice, "category": "billing", "version": 1, "subject": "Facture RGZ — {{ month }} {{ year }}"}
    billing = sender.get("/api/v1/email/templates?category=billing").json()
    assert {i["key"] for i in billing["items"]} == {"billing_invoice_monthly", "sla_credit_notification"}
    bad = sender.get("/api/v1/email/templates?category=nope")
    assert bad.status_code == 400 and "category" in bad.json()


def test_template_detail(sender):
    response = sender.get("/api/v1/email/templates/billing_invoice_monthly")
    assert response.status_code == 200
    assert_matches_schema("GET", "/api/v1/email/templates/billing_invoice_monthly", response)
    body = response.json()
    assert "reseller_name" in body["required_variables"] and body["versions"][0]["language"] == "fr"
    assert sender.get("/api/v1/email/templates/nope").status_code == 404


def test_test_render_by_an_editor_returns_the_rendering_and_the_message_id(default_templates, settings):
    settings.EMAIL_TEST_RECIPIENTS = ["test@rgz.bj"]
    editor = ApiClient(create_key(make_user("editor", TEMPLATE_EDITORS)))
    response = editor.post("/api/v1/email/templates/billing_invoice_monthly/test", TEST_RENDER)
    assert response.status_code == 200, response.content
    assert_matches_schema("POST", "/api/v1/email/templates/billing_invoice_monthly/test", response)
    body = response.json()
    assert body["subject"] == "Facture RGZ — février 2026"
    assert "Test Company" in body["html"] and "TEST-001" in body["text"]
    message = Message.objects.get(pk=body["id"])
    assert message.source_endpoint == "api-test" and message.address == "test@rgz.bj"


def test_test_send_of_incident_does_not_alert_extra_recipients(default_templates, settings):
    settings.EMAIL_TEST_RECIPIENTS = ["@rgz.bj"]
    editor = ApiClient(create_key(make_user("editor", TEMPLATE_EDITORS)))
    response = editor.post("/api/v1/email/templates/incident_alert_critical/test",
                           {"to": "qa@rgz.bj", "variables": INCIDENT["variables"]})
    assert response.status_code == 200, response.content
    assert response.json()["total"] == 1
    assert not Message.objects.filter(address="noc@rgz.bj").exists()


def test_history_by_recipient_newest_first(sender, admin):
    for _ in range(3):
        assert sender.post("/api/v1/email/send", WELCOME).status_code == 201
    assert sender.post("/api/v1/email/send", INVOICE).status_code == 201
    response = admin.get("/api/v1/email/messages?to=john@techconnect.bj")
    assert response.status_code == 200
    assert_matches_schema("GET", "/api/v1/email/messages", response)
    items = response.json()["items"]
    assert len(items) == 3 and {i["to"] for i in items} == {"john@techconnect.bj"}
    created = [i["created_at"] for i in items]
    assert created == sorted(created, reverse=True)
    page = admin.get("/api/v1/email/messages?limit=2&offset=1").json()
    assert page["total"] == 4 and len(page["items"]) == 2
    detail = admin.get(f"/api/v1/email/messages/{items[0]['id']}")
    assert detail.status_code == 200
    assert_matches_schema("GET", f"/api/v1/email/messages/{items[0]['id']}", detail)


def test_message_detail_lists_attachment_metadata_and_events_not_bytes(sender, django_capture_on_commit_callbacks):
    pdf = make_pdf()
    body = {**INVOICE, "attachments": [{"filename": "i.pdf", "content_type": "application/pdf",
                                        "data_base64": base64.b64encode(pdf).decode()}]}
    with django_capture_on_commit_callbacks(execute=True):
        message_id = sender.post("/api/v1/email/send", body).json()["items"][0]["id"]
    detail = sender.get(f"/api/v1/email/messages/{message_id}").json()
    [attachment] = detail["attachments"]
    assert attachment["sha256"] == hashlib.sha256(pdf).hexdigest() and attachment["size_bytes"] == len(pdf)
    assert "data" not in attachment and "data_base64" not in attachment
    assert detail["status"] == "sent"


def test_put_adds_a_version_and_never_overwrites(default_templates):
    editor = ApiClient(create_key(make_user("editor", TEMPLATE_EDITORS)))
    path = "/api/v1/email/templates/rma_confirmation"
    new = {"subject": "RMA {{ rma_number }} / {{ serial_number }}",
           "html_content": "<p>{{ rma_number }} {{ serial_number }} {{ status }} {{ link_tracking }}</p>"}
    response = editor.put(path, new)
    assert response.status_code == 200, response.content
    assert_matches_schema("PUT", path, response)
    assert response.json()["version"] == 2 and response.json()["is_active"] is True
    versions = EmailTemplate.objects.get(key="rma_confirmation").versions.order_by("version")
    assert [(v.version, v.is_active) for v in versions] == [(1, False), (2, True)]
    refused = editor.put(path, {**new, "subject": "RMA {{ rma_numbre }}"})
    assert refused.status_code == 400 and "rma_numbre" in str(refused.json())
    assert versions.count() == 2
    unsafe = editor.put(path, {**new, "html_content": new["html_content"] + "{{ status.__class__ }}"})
    assert unsafe.status_code == 400, unsafe.content
    assert "__class__" in unsafe.json()["html_content"][0]
    assert versions.count() == 2


def test_schema_and_docs_are_served():
    from django.test import Client

    client = Client()
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200 and schema.json()["openapi"].startswith("3.1")
    docs = client.get("/api/docs/")
    assert docs.status_code == 200 and b"swagger-ui" in docs.content


def test_every_operation_documents_its_error_responses():
    from notifications.tests.support.api import served_schema

    schema = served_schema()
    operations = [(path, method, op) for path, ops in schema["paths"].items() for method, op in ops.items()]
    assert len(operations) == 9
    for path, method, operation in operations:
        documented = set(operation["responses"])
        assert {"400", "401", "403", "429"} <= documented, (method, path, documented)
        if method in ("post", "put"):
            assert {"413", "415"} <= documented, (method, path, documented)
        if "{" in path or method == "post":
            assert "404" in documented, (method, path, documented)
        assert operation.get("security"), (method, path)
