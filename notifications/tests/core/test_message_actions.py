"""Resend and retry as services (`core.outbox.message_actions`), below the admin: what the copy
holds, when each is refused, and what reaches the mail server."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from notifications.exceptions import InvalidTransition, SealedContentGone
from notifications.models import Message, Reason, Scope, Status, Suppression
from notifications.core.outbox import lifecycle
from notifications.policies import suppression
from notifications.core.outbox.message_actions import RESEND_ENDPOINT, resend_message, retry_messages
from notifications.channels.email.sending import send_mail_template

pytestmark = pytest.mark.django_db

TOKEN = "5e8ff9bf55ba3508199d22e984129be6"
URL = f"https://admin-rgz.duckdns.org/accounts/create?token={TOKEN}"


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user("desk", password="x" * 12, is_staff=True)


def test_a_masked_message_whose_seal_is_kept_is_resent_with_the_real_content(
    default_templates, smtp_backend, staff, django_capture_on_commit_callbacks
):
    """Written `suppressed` (its seal kept, never sent), then the address is lifted: the copy
    carries the seal, so the recipient gets the real link while the audit stays masked."""
    Suppression.objects.create(address="new.user@rgz.bj", scope=Scope.ALL, reason=Reason.MANUAL)
    [original] = send_mail_template("account_creation_invitation", "new.user@rgz.bj", {"creation_url": URL})
    original.refresh_from_db()
    assert original.status == Status.SUPPRESSED and original.is_masked and original.sealed_content
    suppression.lift(Suppression.objects.all(), by=staff)

    with django_capture_on_commit_callbacks(execute=True):
        copy = resend_message(message=original, requested_by=staff)
    [received] = smtp_backend.wait_for(1)
    assert TOKEN in received.message.get_body(preferencelist=("plain",)).get_content()
    copy.refresh_from_db()
    assert copy.status == Status.SENT and copy.is_masked and TOKEN not in copy.text_content
    assert copy.sealed_content == "" and copy.resent_from_id == original.pk
    assert copy.source_endpoint == RESEND_ENDPOINT and copy.sent_by == staff and copy.idempotency_key == ""


def test_resend_and_retry_refuse_what_they_cannot_do_and_say_why(default_templates, staff):
    [queued] = send_mail_template("billing_invoice_monthly", "a@rgz.bj", {
        "reseller_name": "Tech Connect SA", "month": "février", "year": "2026", "amount_fcfa": "450000",
        "link_portal": "https://admin-rgz.duckdns.org/invoices/latest", "invoice_number": "INV-2026-0001"})
    with pytest.raises(InvalidTransition, match="has not left yet"):
        resend_message(message=queued, requested_by=staff)

    [masked] = send_mail_template("account_creation_invitation", "b@rgz.bj", {"creation_url": URL})
    lifecycle.cancel(masked.pk)  # cancelling deletes the seal too
    masked.refresh_from_db()
    assert masked.status == Status.CANCELLED and masked.sealed_content == ""
    with pytest.raises(SealedContentGone, match="unmasked content was deleted"):
        resend_message(message=masked, requested_by=staff)

    result = retry_messages(message_ids=[queued.pk, masked.pk])
    assert result.retried == 0
    assert "only failed or expired" in result.refused[queued.pk]
    assert "only failed or expired" in result.refused[masked.pk]
    assert Message.objects.count() == 2
