"""The RFC 5322 bytes built at enqueue: what Django would build, sent as they are over SMTP."""
from __future__ import annotations

import email
import hashlib
import re
from email import policy
from unittest import mock

import pytest

from notifications.models import Message, Status
from notifications.channels.email import delivery
from notifications.channels.email import mime
from notifications.channels.email.sending import send_mail_template, send_simple_mail
from notifications.tests.support.files import make_pdf
from notifications.tests.support.payloads import INVOICE_VARS, WELCOME_VARS

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def prebuilding(settings):
    """Bytes are prebuilt only for a backend that sends them: configure one (not locmem)."""
    settings.EMAIL_BACKEND = "notifications.backends.SMTPBackend"

BOUNDARY = re.compile(rb"={15}\d+==")
DATE = re.compile(rb"^Date: .*?\r\n", re.MULTILINE)


def comparable(raw: bytes) -> bytes:
    """The bytes with their random multipart boundaries numbered in order and no Date."""
    seen: dict[bytes, bytes] = {}
    raw = BOUNDARY.sub(lambda m: seen.setdefault(m.group(), b"BOUNDARY-%d" % len(seen)), raw)
    return DATE.sub(b"", raw)


def parsed(raw: bytes):
    return email.message_from_bytes(raw, policy=policy.default)


def send_invoice(to, **options) -> list[Message]:
    pdf = make_pdf("Facture INV-2026-0001")
    return send_mail_template(
        "billing_invoice_monthly", to, INVOICE_VARS,
        attachments=[{"filename": "facture février.pdf", "content_type": "application/pdf", "content": pdf}],
        **options,
    )


def test_the_stored_bytes_are_what_django_builds_at_delivery(default_templates):
    [message] = send_invoice("reseller@techconnect.bj", cc=["sales@rgz.bj"],
                             bcc="audit@rgz.bj", reply_to="support@rgz.bj")
    message.refresh_from_db()
    stored = bytes(message.mime)
    built = delivery.build_email(message).message().as_bytes(linesep="\r\n")
    assert comparable(stored) == comparable(built)

    mail, reference = parsed(stored), parsed(built)
    for header in ("Subject", "From", "To", "Cc", "Reply-To", "Message-ID", "X-Notification-Id"):
        assert mail[header] == reference[header], header
    assert mail["Bcc"] is None and b"audit@rgz.bj" not in stored  # the envelope's alone
    assert mail["Message-ID"] == delivery.message_id_header(message)
    assert mail["X-Notification-Id"] == str(message.pk)
    assert mail["Date"] is not None
    for kind in ("plain", "html"):
        assert mail.get_body(preferencelist=(kind,)).get_content() == \
            reference.get_body(preferencelist=(kind,)).get_content()
    [attachment] = mail.iter_attachments()
    [expected] = reference.iter_attachments()
    assert attachment.get_filename() == expected.get_filename() == "facture février.pdf"
    assert hashlib.sha256(attachment.get_content()).hexdigest() == message.attachments.get().sha256


def test_a_simple_mail_is_prebuilt_too(db):
    [message] = send_simple_mail("a@rgz.bj", "Bonjour", "Un texte.", links=[("Voir", "https://rgz.bj")])
    message.refresh_from_db()
    assert comparable(bytes(message.mime)) == comparable(
        delivery.build_email(message).message().as_bytes(linesep="\r\n"))


def test_three_recipients_share_one_build_and_each_gets_its_own_headers(default_templates):
    addresses = ["a@rgz.bj", "b@rgz.bj", "c@rgz.bj"]
    with mock.patch.object(mime.MimeTemplate, "of", side_effect=mime.MimeTemplate.of) as builds:
        messages = send_invoice(addresses)
    assert builds.call_count == 1
    bodies = set()
    for message, address in zip(messages, addresses, strict=True):
        message.refresh_from_db()
        mail = parsed(bytes(message.mime))
        assert mail["To"] == address
        assert mail["Message-ID"] == delivery.message_id_header(message)
        assert mail["X-Notification-Id"] == str(message.pk)
        assert comparable(bytes(message.mime)) == comparable(
            delivery.build_email(message).message().as_bytes(linesep="\r\n"))
        bodies.add(bytes(message.mime).partition(b"\r\n\r\n")[2])
    assert len(bodies) == 1


@pytest.mark.parametrize("backend", ["django.core.mail.backends.smtp.EmailBackend", "notifications.backends.SMTPBackend"])
def test_the_smtp_server_receives_the_stored_bytes_without_a_rebuild(
    backend, default_templates, smtp_backend, settings, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = backend
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        [message] = send_invoice("reseller@techconnect.bj", cc=["sales@rgz.bj"], bcc="audit@rgz.bj")
    with mock.patch.object(delivery, "build_email", side_effect=AssertionError("rebuilt")):
        callbacks[0]()
    [received] = smtp_backend.wait_for(1)
    message.refresh_from_db()
    assert message.status == Status.SENT, message.error_message
    assert received.raw.replace(b"\r\n", b"\n").rstrip(b"\n") == \
        bytes(message.mime).replace(b"\r\n", b"\n").rstrip(b"\n")
    assert sorted(received.rcpt_tos) == ["audit@rgz.bj", "reseller@techconnect.bj", "sales@rgz.bj"]
    assert message.provider_message_id == received.message["Message-ID"] == delivery.message_id_header(message)
    assert message.sent_via == f"{smtp_backend.host}:{smtp_backend.port}"


def test_a_row_without_bytes_is_built_at_delivery(default_templates, smtp_backend, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        [message] = send_mail_template("onboarding_welcome", "john@techconnect.bj", WELCOME_VARS)
    Message.objects.filter(pk=message.pk).update(mime=b"")  # queued before the column existed
    callbacks[0]()
    [received] = smtp_backend.wait_for(1)
    message.refresh_from_db()
    assert message.status == Status.SENT
    assert received.message["X-Notification-Id"] == str(message.pk)
    assert "Tech Connect SA" in received.message.get_body(preferencelist=("plain",)).get_content()


def test_backends_that_read_the_message_get_a_built_one(default_templates, settings, django_capture_on_commit_callbacks):
    from django.core import mail

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        [message] = send_invoice("reseller@techconnect.bj")
    assert bytes(Message.objects.get(pk=message.pk).mime)
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"  # changed before delivery
    callbacks[0]()
    [sent] = mail.outbox
    assert not isinstance(sent, mime.PrebuiltEmail)
    assert sent.alternatives and sent.attachments[0].filename == "facture février.pdf"


def test_a_masked_message_stores_no_bytes_and_is_built_from_its_seal(
    default_templates, smtp_backend, django_capture_on_commit_callbacks
):
    token = "8f14e45fceea167a5a36dedd4bea2543"
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        [message] = send_mail_template("account_creation_invitation", "new.user@rgz.bj",
                                       {"creation_url": f"https://rgz.bj/create?token={token}"})
    row = Message.objects.get(pk=message.pk)
    assert row.is_masked and bytes(row.mime) == b""
    callbacks[0]()
    [received] = smtp_backend.wait_for(1)
    assert token in received.message.get_body(preferencelist=("plain",)).get_content()
    assert bytes(Message.objects.get(pk=message.pk).mime) == b""


def test_nothing_is_prebuilt_for_a_backend_that_would_not_use_it(default_templates, settings):
    for backend in ("anymail.backends.sendgrid.EmailBackend", "notifications.backends.DatabaseSMTPBackend",
                    "django.core.mail.backends.console.EmailBackend"):
        settings.EMAIL_BACKEND = backend
        [message] = send_invoice("reseller@techconnect.bj")
        assert bytes(Message.objects.get(pk=message.pk).mime) == b"", backend


def test_large_attachments_are_not_copied_into_every_row(default_templates, settings):
    settings.EMAIL_PREBUILD_MAX_ATTACHMENT_BYTES = 1000
    big = make_pdf("x" * 2000)
    messages = send_mail_template("billing_invoice_monthly", ["a@rgz.bj", "b@rgz.bj"], INVOICE_VARS,
                                  attachments=[("big.pdf", big, "application/pdf")])
    assert all(bytes(Message.objects.get(pk=m.pk).mime) == b"" for m in messages)
    settings.EMAIL_PREBUILD_MAX_ATTACHMENT_BYTES = 1_000_000
    [small] = send_invoice("c@rgz.bj")
    assert bytes(Message.objects.get(pk=small.pk).mime)


def claims_and_reads_of_the_rendering(captured) -> tuple[list[str], list[str]]:
    """The drain's claim statements, and the statements that read the rendered HTML."""
    claims = [q["sql"] for q in captured if q["sql"].startswith("UPDATE") and "RETURNING" in q["sql"]]
    reads = [q["sql"] for q in captured if q["sql"].startswith("SELECT") and "html_content" in q["sql"]]
    return claims, reads


def test_a_drain_claims_prebuilt_rows_without_their_rendering_and_sends_the_stored_bytes(
    default_templates, smtp_backend
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from notifications.channels.email.channel import RENDERING
    from notifications.core.outbox import drain

    messages = send_invoice(["a@rgz.bj", "b@rgz.bj", "c@rgz.bj"])
    with mock.patch.object(delivery, "build_email", side_effect=AssertionError("rebuilt")), \
            CaptureQueriesContext(connection) as captured:
        assert drain.drain_lane(lane=messages[0].lane) == {"sent": 3}

    claims, reads = claims_and_reads_of_the_rendering(captured)
    assert claims and not reads
    for claim in claims:
        returned = claim.partition("RETURNING")[2]
        assert "mime" in returned
        assert not [name for name in RENDERING if name in returned], returned
    received = {r.rcpt_tos[0]: r for r in smtp_backend.wait_for(3)}
    for message in messages:
        message.refresh_from_db()
        assert message.status == Status.SENT, message.error_message
        assert received[message.address].raw.replace(b"\r\n", b"\n").rstrip(b"\n") == \
            bytes(message.mime).replace(b"\r\n", b"\n").rstrip(b"\n")  # byte for byte


def test_rows_without_bytes_in_a_light_claim_are_built_from_their_rendering_or_their_seal(
    default_templates, smtp_backend
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from notifications.core.outbox import drain

    token = "8f14e45fceea167a5a36dedd4bea2543"
    [masked] = send_mail_template("account_creation_invitation", "new.user@rgz.bj",
                                  {"creation_url": f"https://rgz.bj/create?token={token}"})
    [legacy] = send_mail_template("onboarding_welcome", "john@techconnect.bj", WELCOME_VARS)
    Message.objects.filter(pk=legacy.pk).update(mime=b"")  # queued before the column existed
    [invoice] = send_invoice("reseller@techconnect.bj")
    assert masked.lane == legacy.lane == invoice.lane
    assert bytes(Message.objects.get(pk=masked.pk).mime) == b""
    with CaptureQueriesContext(connection) as captured:
        assert drain.drain_lane(lane=masked.lane) == {"sent": 3}

    claims, reads = claims_and_reads_of_the_rendering(captured)
    assert len(claims) == 1 and "html_content" not in claims[0]
    assert len(reads) == 1  # the rendering of the two rows without bytes, in one query
    received = {r.rcpt_tos[0]: r for r in smtp_backend.wait_for(3)}
    assert token in received["new.user@rgz.bj"].message.get_body(preferencelist=("plain",)).get_content()
    assert "Tech Connect SA" in received["john@techconnect.bj"].message.get_body(
        preferencelist=("plain",)).get_content()
    invoice.refresh_from_db()
    assert received["reseller@techconnect.bj"].raw.replace(b"\r\n", b"\n").rstrip(b"\n") == \
        bytes(invoice.mime).replace(b"\r\n", b"\n").rstrip(b"\n")
    for message in (masked, legacy, invoice):
        message.refresh_from_db()
        assert message.status == Status.SENT and message.sealed_content == ""
