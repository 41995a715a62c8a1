"""End to end through Django's SMTP backend to a real aiosmtpd server, parsed as received."""
from __future__ import annotations

import hashlib
import time

import pytest

from notifications.models import Message, Status
from notifications.channels.email import delivery
from notifications.core.outbox import drain
from notifications.core.outbox.sweep import sweep
from notifications.channels.email.sending import send_mail_template
from notifications.tests.support.files import make_pdf
from notifications.tests.support.outcomes import assert_put_back_uncounted
from notifications.tests.support.payloads import INCIDENT_VARS, INVOICE_VARS, WELCOME_VARS

pytestmark = pytest.mark.django_db


def test_invoice_with_pdf_arrives_with_both_alternatives_and_the_same_pdf(
    default_templates, smtp_backend, settings, django_capture_on_commit_callbacks
):
    # Not the test settings' values: what arrives must come from these settings as they are now.
    settings.SMTP_FROM_NAME = "Facturation RGZ"
    settings.SMTP_FROM_EMAIL = "factures@billing.rgz.bj"
    settings.SMTP_REPLY_TO = "compta@rgz.bj"
    pdf = make_pdf("Facture INV-2026-0001")
    with django_capture_on_commit_callbacks(execute=True):
        [message] = send_mail_template(
            "billing_invoice_monthly",
            "reseller@techconnect.bj",
            INVOICE_VARS,
            attachments=[{"filename": "invoice_2026-02.pdf", "content_type": "application/pdf", "content": pdf}],
            source_endpoint="billing",
        )
    [received] = smtp_backend.wait_for(1)
    mail = received.message
    assert received.rcpt_tos == ["reseller@techconnect.bj"]
    assert mail["Subject"] == "Facture RGZ — février 2026"
    assert received.mail_from == "factures@billing.rgz.bj"
    assert mail["From"] == "Facturation RGZ <factures@billing.rgz.bj>"
    assert mail["Reply-To"] == "compta@rgz.bj"
    text = mail.get_body(preferencelist=("plain",)).get_content()
    html = mail.get_body(preferencelist=("html",)).get_content()
    assert "Tech Connect SA" in text and "INV-2026-0001" in text and "<" not in text.split("\n")[0]
    assert "Tech Connect SA" in html and "https://admin-rgz.duckdns.org/invoices/latest" in html
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_filename() == "invoice_2026-02.pdf"
    assert attachment.get_content_type() == "application/pdf"
    assert hashlib.sha256(attachment.get_content()).hexdigest() == hashlib.sha256(pdf).hexdigest()

    message.refresh_from_db()
    assert message.status == Status.SENT and message.sent_at is not None and message.attempts == 1
    assert message.provider_message_id == mail["Message-ID"] == delivery.message_id_header(message)
    assert message.attachments.get().sha256 == hashlib.sha256(pdf).hexdigest()


def test_incident_to_two_addresses_is_two_deliveries(default_templates, smtp_backend, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        send_mail_template("incident_alert_critical", "noc@rgz.bj,reseller@techconnect.bj", INCIDENT_VARS)
    received = smtp_backend.wait_for(2)
    assert sorted(r.rcpt_tos[0] for r in received) == ["noc@rgz.bj", "reseller@techconnect.bj"]
    assert all(len(r.rcpt_tos) == 1 for r in received)
    assert Message.objects.filter(status=Status.SENT).count() == 2


def test_cc_and_bcc_ride_on_the_message_to_its_single_address(default_templates, smtp_backend, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        send_mail_template("onboarding_welcome", "john@techconnect.bj", WELCOME_VARS,
                           cc=["sales@rgz.bj"], bcc="audit@rgz.bj", reply_to="onboarding@rgz.bj")
    [received] = smtp_backend.wait_for(1)
    assert sorted(received.rcpt_tos) == ["audit@rgz.bj", "john@techconnect.bj", "sales@rgz.bj"]
    assert received.message["Cc"] == "sales@rgz.bj"
    assert received.message["Bcc"] is None
    assert received.message["Reply-To"] == "onboarding@rgz.bj"


def test_a_second_delivery_of_the_same_message_sends_nothing(default_templates, smtp_backend, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        [message, _noc] = send_mail_template("incident_alert_critical", "reseller@techconnect.bj", INCIDENT_VARS)
    assert drain.drain_lane(lane=message.lane) == {}
    smtp_backend.wait_for(3, timeout=0.5)
    assert len(smtp_backend.received) == 2  # the reseller and noc@rgz.bj, once each


def test_an_unreachable_server_costs_no_attempt_and_the_message_leaves_once_it_is_back(
    default_templates, settings, start_smtp_server, django_capture_on_commit_callbacks
):
    from notifications.tests.support.services import free_port

    settings.OUTBOX_RETRY_BACKOFF_BASE_SECONDS = settings.OUTBOX_RETRY_BACKOFF_MAX_SECONDS = 0.001
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", free_port(), False
    with django_capture_on_commit_callbacks(execute=True):
        [message, noc] = send_mail_template("incident_alert_critical", "reseller@techconnect.bj", INCIDENT_VARS)
    for row in (message, noc):
        assert_put_back_uncounted(row, says="the server refused the connection")
    assert "ConnectionRefusedError" in message.error_message

    server = start_smtp_server(port=settings.EMAIL_PORT)
    time.sleep(0.01)  # the lane's rest and the rows' backoff (a millisecond) pass
    assert sweep().woken == [message.lane]

    assert sorted(r.rcpt_tos[0] for r in server.wait_for(2)) == ["noc@rgz.bj", "reseller@techconnect.bj"]
    for row in (message, noc):
        row.refresh_from_db()
        assert (row.status, row.attempts, row.error_message) == (Status.SENT, 1, "")
