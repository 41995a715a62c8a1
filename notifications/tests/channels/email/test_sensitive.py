"""Sensitive variables: masked in the audit, sealed until sent or failed, never resent."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from notifications.models import Message, Status
from notifications.core.outbox import lifecycle
from notifications.core.outbox import drain
from notifications.channels.email.sealing import MASK, WITHHELD
from notifications.channels.email.sending import send_mail_template
from notifications.tests.factories import EmailTemplateFactory

pytestmark = pytest.mark.django_db

TOKEN = "8f14e45fceea167a5a36dedd4bea2543"
URL = f"https://admin-rgz.duckdns.org/accounts/create?token={TOKEN}"


def stored_columns(message_id) -> str:
    """Every stored column of the row, as text, the way a database dump would show it."""
    row = Message.objects.filter(pk=message_id).values().get()
    return " ".join(
        bytes(value).decode("utf-8", "replace") if isinstance(value, (bytes, memoryview)) else str(value)
        for value in row.values()
    )


def test_the_audit_is_masked_the_recipient_gets_the_real_link_and_the_seal_is_deleted(
    default_templates, smtp_backend, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        [message] = send_mail_template("account_creation_invitation", "new.user@rgz.bj", {"creation_url": URL})
    queued = stored_columns(message.pk)
    assert TOKEN not in queued and MASK in queued
    message.refresh_from_db()
    assert message.is_masked and message.sealed_content and message.variables == {"creation_url": MASK}

    callbacks[0]()
    [received] = smtp_backend.wait_for(1)
    html = received.message.get_body(preferencelist=("html",)).get_content()
    assert URL.replace("&", "&amp;") in html or URL in html
    assert TOKEN in received.message.get_body(preferencelist=("plain",)).get_content()
    message.refresh_from_db()
    assert message.status == Status.SENT and message.sealed_content == ""
    assert TOKEN not in stored_columns(message.pk)


def test_a_failed_message_loses_its_seal_and_cannot_be_sent_again(
    default_templates, settings, start_smtp_server, django_capture_on_commit_callbacks
):
    server = start_smtp_server(rcpt_replies={"new.user@rgz.bj": "550 5.1.1 No such user"})
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = server.host, server.port, False
    with django_capture_on_commit_callbacks(execute=True):
        [message] = send_mail_template("account_creation_invitation", "new.user@rgz.bj", {"creation_url": URL})
    message.refresh_from_db()
    assert message.status == Status.FAILED and message.sealed_content == ""

    assert lifecycle.retry_now([message.pk]) == 1  # an operator retries it knowingly
    assert drain.drain_lane(lane=message.lane) == {"failed": 1}
    message.refresh_from_db()
    assert message.status == Status.FAILED
    assert message.error_message.startswith("permanent:")
    assert "cannot be sent again" in message.error_message


def test_a_value_the_masked_render_cannot_use_is_withheld_from_the_audit(db, django_capture_on_commit_callbacks):
    from django.core import mail

    template = EmailTemplateFactory(
        required_variables=["code"], sensitive_variables=["code"],
        versions={"fr": {"subject": "Votre code", "html_content": "<p>Part {{ 1000 // (code|int) }}</p>"}},
    )
    with django_capture_on_commit_callbacks(execute=True):
        [message] = send_mail_template(template.key, "a@rgz.bj", {"code": "41"})
    message.refresh_from_db()
    assert WITHHELD in message.html_content and "24" not in message.html_content  # the mask divides by 0
    assert "Part 24" in mail.outbox[0].alternatives[0][0]


def test_messages_without_sensitive_values_are_stored_as_sent(default_templates):
    [message] = send_mail_template("rma_confirmation", "a@rgz.bj", {
        "rma_number": "RMA-1", "serial_number": "SN", "status": "ouvert", "link_tracking": "https://rgz.bj/r/1"})
    assert not message.is_masked and message.sealed_content == "" and "RMA-1" in message.html_content


def test_a_sensitive_variable_must_be_declared(db):
    with pytest.raises(ValidationError) as info:
        EmailTemplateFactory.build(required_variables=["a"], sensitive_variables=["b"]).full_clean()
    assert "sensitive_variables" in info.value.message_dict
