"""SendGrid and Amazon SES through anymail, their HTTP APIs answered by a local server.

Only the ESP's HTTP API is stood in for (a real `http.server` on a free port); anymail,
requests, boto3 and our delivery service run for real.
"""
from __future__ import annotations

import base64
import email
import hashlib
import json
import warnings
from email import policy

import pytest
from anymail.exceptions import AnymailNotSupportedWarning

from notifications.apps import silence_sendgrid_support_warning
from notifications.models import Message, Status
from notifications.channels.email.sending import send_mail_template
from notifications.tests.support.files import make_pdf
from notifications.tests.support.http import ESPServer, Reply
from notifications.tests.support.outcomes import assert_failed, assert_put_back_uncounted, assert_retry_scheduled
from notifications.tests.support.payloads import INVOICE_VARS

pytestmark = pytest.mark.django_db

PDF = make_pdf("Facture INV-2026-0001")
SES_MESSAGE_ID = "0102019a-test-ses-message-id-000000"


@pytest.fixture
def esp_server():
    server = ESPServer().start()
    yield server
    server.stop()


@pytest.fixture
def sendgrid(settings, esp_server):
    settings.EMAIL_BACKEND = "anymail.backends.sendgrid.EmailBackend"
    settings.ANYMAIL = {"SENDGRID_API_KEY": "SG.test-key", "SENDGRID_API_URL": f"{esp_server.url}/v3/"}
    esp_server.reply = Reply(status=202, body=b"")
    return esp_server


@pytest.fixture
def amazon_ses(settings, esp_server):
    settings.EMAIL_BACKEND = "anymail.backends.amazon_ses.EmailBackend"
    settings.ANYMAIL = {
        "AMAZON_SES_CLIENT_PARAMS": {
            "endpoint_url": esp_server.url,
            "region_name": "eu-west-1",
            "aws_access_key_id": "AKIDTESTTESTTEST",
            "aws_secret_access_key": "test-secret",
            # boto3 retries 429 and 5xx by itself; one attempt shows our classification.
            "config": {"retries": {"total_max_attempts": 1, "mode": "standard"}},
        },
    }
    esp_server.reply = Reply(status=200, body={"MessageId": SES_MESSAGE_ID})
    return esp_server


def send_invoice(capture) -> Message:
    with capture(execute=True):
        [message] = send_mail_template(
            "billing_invoice_monthly", "reseller@techconnect.bj", INVOICE_VARS,
            attachments=[("invoice_2026-02.pdf", PDF, "application/pdf")], source_endpoint="billing",
        )
    message.refresh_from_db()
    return message


def test_sendgrid_payload_carries_everything_and_its_id_is_stored(
    default_templates, sendgrid, django_capture_on_commit_callbacks
):
    message = send_invoice(django_capture_on_commit_callbacks)

    assert message.status == Status.SENT, message.error_message
    [request] = sendgrid.requests
    assert request.path == "/v3/mail/send"
    assert request.headers["Authorization"] == "Bearer SG.test-key"
    payload = request.json()
    assert payload["subject"] == "Facture RGZ — février 2026"
    assert payload["from"] == {"email": "noreply@rgz.bj", "name": "RGZ Notifications"}
    contents = {part["type"]: part["value"] for part in payload["content"]}
    assert "Tech Connect SA" in contents["text/plain"] and "INV-2026-0001" in contents["text/plain"]
    assert "https://admin-rgz.duckdns.org/invoices/latest" in contents["text/html"]
    [attachment] = payload["attachments"]
    assert attachment["filename"] == "invoice_2026-02.pdf" and attachment["type"] == "application/pdf"
    assert hashlib.sha256(base64.b64decode(attachment["content"])).digest() == hashlib.sha256(PDF).digest()
    [personalization] = payload["personalizations"]
    assert personalization["to"] == [{"email": "reseller@techconnect.bj"}]
    assert payload["custom_args"]["notification_id"] == str(message.pk)
    # anymail makes the id and sends it along, so SendGrid's events carry it back.
    assert message.provider_message_id == personalization["custom_args"]["anymail_id"]
    assert message.sent_via == "SendGrid"


def test_the_app_silences_anymails_sendgrid_support_warning_and_no_other(settings):
    from anymail.backends.sendgrid import EmailBackend

    settings.ANYMAIL = {"SENDGRID_API_KEY": "SG.k"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()  # nothing but what the app installs
        warnings.simplefilter("always")
        silence_sendgrid_support_warning()
        EmailBackend()
        warnings.warn("another feature anymail does not support", AnymailNotSupportedWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["another feature anymail does not support"]


def test_amazon_ses_payload_carries_everything_and_its_id_is_stored(
    default_templates, amazon_ses, django_capture_on_commit_callbacks
):
    message = send_invoice(django_capture_on_commit_callbacks)

    assert message.status == Status.SENT, message.error_message
    [request] = amazon_ses.requests
    assert request.path == "/v2/email/outbound-emails"
    assert "Credential=AKIDTESTTESTTEST/" in request.headers["Authorization"]
    payload = request.json()
    assert payload["Destination"] == {"ToAddresses": ["reseller@techconnect.bj"]}
    mime = email.message_from_bytes(base64.b64decode(payload["Content"]["Raw"]["Data"]), policy=policy.default)
    assert mime["Subject"] == "Facture RGZ — février 2026"
    assert "Tech Connect SA" in mime.get_body(preferencelist=("plain",)).get_content()
    assert "https://admin-rgz.duckdns.org/invoices/latest" in mime.get_body(preferencelist=("html",)).get_content()
    [attachment] = list(mime.iter_attachments())
    assert attachment.get_filename() == "invoice_2026-02.pdf"
    assert attachment.get_content() == PDF
    assert json.loads(mime["X-Metadata"]) == {"notification_id": str(message.pk)}
    assert mime["X-Notification-Id"] == str(message.pk)
    assert message.provider_message_id == SES_MESSAGE_ID
    assert message.sent_via == "Amazon SES"


SENDGRID_ERROR = {"errors": [{"message": "error", "field": None}]}


@pytest.mark.parametrize("status, kind", [(500, "transient"), (503, "transient"), (429, "transient"),
                                          (400, "permanent"), (401, "permanent")])
def test_sendgrid_errors_are_classified_by_http_status(
    status, kind, default_templates, sendgrid, django_capture_on_commit_callbacks
):
    sendgrid.reply = Reply(status=status, body=SENDGRID_ERROR)

    message = send_invoice(django_capture_on_commit_callbacks)

    if kind == "transient":
        assert_retry_scheduled(message, says=f"SendGrid API response {status}")
    else:
        assert_failed(message, kind=kind, says=f"SendGrid API response {status}")
    assert message.error_message.startswith(f"{kind}: SendGrid ")


@pytest.mark.parametrize("status, code, kind", [
    (429, "TooManyRequestsException", "transient"),
    (500, "InternalFailure", "transient"),
    (400, "MessageRejected", "permanent"),
    (400, "Throttling", "transient"),
])
def test_amazon_ses_errors_are_classified_by_status_and_code(
    status, code, kind, default_templates, amazon_ses, django_capture_on_commit_callbacks
):
    amazon_ses.reply = Reply(status=status, body={"message": f"{code} for the test"},
                             headers={"x-amzn-ErrorType": f"{code}:http://internal.amazon.com/"})

    message = send_invoice(django_capture_on_commit_callbacks)

    if kind == "transient":
        assert_retry_scheduled(message, says=code)
    else:
        assert_failed(message, kind=kind, says=code)
    assert message.error_message.startswith(f"{kind}: Amazon SES ")


def test_an_esp_that_cannot_be_reached_is_an_outage_that_costs_no_attempt(
    default_templates, settings, django_capture_on_commit_callbacks
):
    from notifications.tests.support.services import free_port

    settings.EMAIL_BACKEND = "anymail.backends.sendgrid.EmailBackend"
    settings.ANYMAIL = {"SENDGRID_API_KEY": "SG.k", "SENDGRID_API_URL": f"http://127.0.0.1:{free_port()}/v3/"}

    message = send_invoice(django_capture_on_commit_callbacks)

    assert_put_back_uncounted(message, says="the ESP could not be reached")
    assert "Connection refused" in message.error_message
