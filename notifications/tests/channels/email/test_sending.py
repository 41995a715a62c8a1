"""send_mail_template() and send_simple_mail(): validation, audit rows, queueing, versions."""
from __future__ import annotations

import pytest
from django.core import mail

from notifications.exceptions import (
    AttachmentError,
    AttachmentTooLarge,
    InvalidRecipient,
    MissingVariables,
    RenderLimitExceeded,
    TemplateError,
    TemplateInactive,
    TemplateNotFound,
    TemplateSecurityError,
    TooManyRecipients,
)
from notifications.models import EmailAttachment, Message, EmailTemplate, EmailTemplateVersion, Status
from notifications.channels.email.sending import send_mail_template, send_simple_mail
from notifications.authoring.versions import create_template_version
from notifications.tests.factories import EmailTemplateFactory
from notifications.tests.support.files import make_pdf, make_png
from notifications.tests.support.payloads import INCIDENT_VARS, INVOICE_VARS, WELCOME_VARS

pytestmark = pytest.mark.django_db

def send(*args, **kwargs):
    return send_mail_template(*args, **kwargs)


def test_incident_alert_gives_one_row_and_one_delivery_per_address(default_templates, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        messages = send("incident_alert_critical", "noc@rgz.bj,reseller@techconnect.bj", INCIDENT_VARS, source_endpoint="incident")
    assert sorted(m.address for m in messages) == ["noc@rgz.bj", "reseller@techconnect.bj"]
    assert Message.objects.count() == 2
    assert sorted(tuple(m.to) for m in mail.outbox) == [("noc@rgz.bj",), ("reseller@techconnect.bj",)]
    assert set(Message.objects.values_list("status", flat=True)) == {Status.SENT}
    row = Message.objects.get(address="reseller@techconnect.bj")
    assert row.subject == "⚠️ ALERTE CRITIQUE RGZ — INC-2026-000847"
    assert row.lane == "urgent" and row.max_attempts == 5 and row.source_endpoint == "incident"


def test_extra_recipients_get_their_own_rows(default_templates, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        messages = send("incident_alert_critical", ["reseller@techconnect.bj"], INCIDENT_VARS)
    assert [m.address for m in messages] == ["reseller@techconnect.bj", "noc@rgz.bj"]
    assert len(mail.outbox) == 2


def test_rows_are_queued_until_the_transaction_commits(default_templates, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        [message] = send("onboarding_welcome", "john@techconnect.bj", WELCOME_VARS)
    message.refresh_from_db()
    assert message.status == Status.QUEUED and len(callbacks) == 1 and mail.outbox == []
    callbacks[0]()
    message.refresh_from_db()
    assert message.status == Status.SENT and len(mail.outbox) == 1


def _assert_nothing_written():
    assert Message.objects.count() == 0
    assert EmailAttachment.objects.count() == 0


@pytest.mark.parametrize(
    "call, error, field, words",
    [
        (lambda: send("nope", "a@b.test", {}), TemplateNotFound, "template_key", ["nope"]),
        (lambda: send("billing_invoice_monthly", "not-an-address", INVOICE_VARS), InvalidRecipient, "to", ["not-an-address"]),
        (lambda: send("billing_invoice_monthly", "", INVOICE_VARS), InvalidRecipient, "to", ["required"]),
        (lambda: send("billing_invoice_monthly", 42, INVOICE_VARS), InvalidRecipient, "to", ["int"]),
        (lambda: send("billing_invoice_monthly", "a@b.test", {"month": "mars"}), MissingVariables, "variables",
         ["amount_fcfa", "invoice_number", "link_portal", "reseller_name", "year"]),
        (lambda: send("billing_invoice_monthly", "a@b.test", INVOICE_VARS, cc="bad"), InvalidRecipient, "cc", ["bad"]),
    ],
    ids=["unknown-template", "bad-address", "empty-to", "to-not-string", "missing-variables", "bad-cc"],
)
def test_bad_input_is_a_clear_error_and_writes_nothing(default_templates, call, error, field, words):
    with pytest.raises(error) as info:
        call()
    assert info.value.field == field
    for word in words:
        assert word in str(info.value)
    _assert_nothing_written()


def test_inactive_template_is_refused(default_templates):
    from notifications.models import EmailTemplate

    EmailTemplate.objects.filter(key="rma_confirmation").update(is_active=False)
    with pytest.raises(TemplateInactive, match="inactive"):
        send("rma_confirmation", "a@b.test", {"rma_number": "1", "serial_number": "2", "status": "3", "link_tracking": "4"})
    _assert_nothing_written()


def test_too_many_recipients(default_templates, settings):
    settings.SEND_MAX_RECIPIENTS_PER_REQUEST = 3
    with pytest.raises(TooManyRecipients, match="at most 3"):
        send("billing_invoice_monthly", [f"u{i}@b.test" for i in range(4)], INVOICE_VARS)
    _assert_nothing_written()


@pytest.mark.parametrize(
    "attachment, error, words",
    [
        (("invoice.pdf", make_png(), "application/pdf"), AttachmentError, ["not a valid PDF"]),
        (("run.exe", b"MZ\x90\x00", "application/x-msdownload"), AttachmentError, ["not allowed"]),
        (("invoice.png", make_pdf(), "application/pdf"), AttachmentError, [".pdf"]),
        (("big.pdf", make_pdf() + b"0" * (2 * 1024 * 1024), "application/pdf"), AttachmentTooLarge, ["larger than"]),
        ({"filename": "x.pdf", "content_type": "application/pdf", "data_base64": "!!!notbase64"}, AttachmentError, ["base64"]),
        (("data.json", b"{not json", "application/json"), AttachmentError, ["JSON"]),
    ],
    ids=["mismatched", "disallowed", "wrong-extension", "oversized", "bad-base64", "bad-json"],
)
def test_refused_attachments_write_nothing(default_templates, settings, attachment, error, words):
    settings.EMAIL_MAX_ATTACHMENT_SIZE_MB = 1
    with pytest.raises(error) as info:
        send("billing_invoice_monthly", "a@b.test", INVOICE_VARS, attachments=[attachment])
    assert info.value.field == "attachments"
    for word in words:
        assert word in str(info.value)
    _assert_nothing_written()


def test_attachment_on_template_that_forbids_them(default_templates):
    with pytest.raises(AttachmentError, match="does not allow attachments"):
        send("incident_alert_critical", "a@b.test", INCIDENT_VARS, attachments=[("i.pdf", make_pdf(), "application/pdf")])
    _assert_nothing_written()


def test_render_error_writes_nothing(db):
    in_subject = EmailTemplateFactory(required_variables=["name"])  # "Bonjour {{ name }}"
    with pytest.raises(TemplateError, match="line break"):
        send(in_subject.key, "a@b.test", {"name": "x\r\nBcc: evil@x.test"})
    in_body = EmailTemplateFactory(
        required_variables=["count"],
        versions={"fr": {"subject": "Parts", "html_content": "<p>{{ 100 // (count|int) }}</p>"}},
    )
    with pytest.raises(TemplateError, match="ZeroDivisionError"):
        send(in_body.key, "a@b.test", {"count": "0"})
    _assert_nothing_written()


def test_editing_adds_a_version_and_old_messages_keep_theirs(db, django_capture_on_commit_callbacks):
    template = EmailTemplateFactory()
    with django_capture_on_commit_callbacks(execute=True):
        [first] = send(template.key, "a@b.test", {"name": "Ada"})
    create_template_version(template=template, language="fr", subject="Salut {{ name }}", html_content="<p>Salut {{ name }}</p>")
    with django_capture_on_commit_callbacks(execute=True):
        [second] = send(template.key, "a@b.test", {"name": "Ada"})
    first.refresh_from_db()
    versions = list(EmailTemplateVersion.objects.filter(template=template).order_by("version"))
    assert [(v.version, v.is_active) for v in versions] == [(1, False), (2, True)]
    assert first.template_version == versions[0] and first.subject == "Bonjour Ada"
    assert first.template_version.subject == "Bonjour {{ name }}"
    assert second.template_version == versions[1] and second.subject == "Salut Ada"


def test_language_picks_that_version_else_default(db, django_capture_on_commit_callbacks):
    template = EmailTemplateFactory(
        default_language="fr",
        versions={
            "fr": {"subject": "Bonjour {{ name }}", "html_content": "<p>Bonjour {{ name }}</p>"},
            "en": {"subject": "Hello {{ name }}", "html_content": "<p>Hello {{ name }}</p>"},
        },
    )
    assert send(template.key, "a@b.test", {"name": "A"}, language="en")[0].subject == "Hello A"
    assert send(template.key, "a@b.test", {"name": "A"}, language="en-GB")[0].subject == "Hello A"
    with pytest.raises(TemplateError, match="Unknown language 'de'") as refused:  # not in LANGUAGES
        send(template.key, "a@b.test", {"name": "A"}, language="de")
    assert refused.value.field == "language"
    assert send(template.key, "a@b.test", {"name": "A"})[0].language == "fr"


def test_sending_disabled_audits_as_suppressed(default_templates, settings, django_capture_on_commit_callbacks):
    settings.OUTBOX_ACTIVE = False
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        [message] = send("billing_invoice_monthly", "a@b.test", INVOICE_VARS)
    assert callbacks == [] and mail.outbox == []
    message.refresh_from_db()
    assert message.status == Status.SUPPRESSED and "Sending disabled" in message.error_message


def test_send_simple_mail_is_audited_and_escaped(db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        [message] = send_simple_mail(
            "a@b.test", "Votre export", "Bonjour <b>toi</b>\n\nVoici les liens.",
            links=[("Rapport", "https://x.test/r?a=1&b=2"), "https://x.test/2"],
        )
    message.refresh_from_db()
    assert message.status == Status.SENT and message.template_version is None
    assert "&lt;b&gt;toi&lt;/b&gt;" in message.html_content
    assert 'href="https://x.test/r?a=1&amp;b=2"' in message.html_content
    assert "Rapport: https://x.test/r?a=1&b=2" in message.text_content
    assert mail.outbox[0].subject == "Votre export"


def test_send_simple_mail_refuses_bad_links_and_subjects(db):
    with pytest.raises(TemplateError, match="javascript"):
        send_simple_mail("a@b.test", "S", "T", links=["javascript:alert(1)"])
    with pytest.raises(TemplateError, match="one line"):
        send_simple_mail("a@b.test", "S\nBcc: x@y.test", "T")
    _assert_nothing_written()



@pytest.mark.parametrize("subject, field, error", [
    ("Facture {{ month.__class__.__mro__ }}", "subject", TemplateSecurityError),
    ("Facture {{ month['__class__'] }}", "subject", TemplateSecurityError),
    ("Facture {{ month|attr('__class__') }}", "subject", TemplateSecurityError),
    ("Facture {{ month.mro }}", "subject", TemplateSecurityError),
    # Built at render time: only the trial render with the sample variables can see it.
    ("Facture {{ month|attr('__cl' ~ 'ass__') }}", "template", TemplateSecurityError),
    ("Facture {{ range(10**8)|list|length }} {{ month }}", "template", RenderLimitExceeded),
])
def test_a_version_that_would_fail_every_send_is_refused_at_save_and_nothing_is_written(
    default_templates, subject, field, error
):
    template = EmailTemplate.objects.get(key="billing_invoice_monthly")
    before = list(template.versions.values_list("pk", "is_active"))
    html = template.versions.get(is_active=True).html_content

    with pytest.raises(error) as refused:
        create_template_version(template=template, language="fr", subject=subject, html_content=html)

    assert refused.value.field == field
    assert list(template.versions.values_list("pk", "is_active")) == before
    # and the template still sends with its active version
    [message] = send_mail_template("billing_invoice_monthly", "reseller@techconnect.bj", INVOICE_VARS)
    assert message.subject == "Facture RGZ — février 2026"
