"""Batches: one claim, one read and one write of outcomes for many messages, each sent once.

The messages are queued inside the test's transaction, so their on-commit publication never
runs; the batch is then delivered as the `deliver_messages` task would, to a real SMTP server.
"""
from __future__ import annotations

import pytest

from notifications.models import EmailMessage, Status
from notifications.services import batches, claims, delivery
from notifications.services.sending import send_mail_template
from notifications.tests.support.concurrency import concurrently
from notifications.tests.support.files import make_pdf
from notifications.tests.support.payloads import INVOICE_VARS
from notifications.tests.support.services import require_postgres

pytestmark = pytest.mark.django_db

PDF = make_pdf()


def queue_invoices(count: int) -> list[EmailMessage]:
    return [
        send_mail_template("billing_invoice_monthly", f"reseller{index}@techconnect.bj", INVOICE_VARS,
                           attachments=[("facture.pdf", PDF, "application/pdf")])[0]
        for index in range(count)
    ]


def test_a_batch_is_claimed_read_and_recorded_in_two_queries(
    default_templates, smtp_backend, django_assert_num_queries
):
    messages = queue_invoices(10)
    with django_assert_num_queries(2):  # the claim returning the rows, the outcomes: not 2 per message
        counts = batches.deliver_many(message_ids=[m.pk for m in messages])

    assert counts == {"skipped": 0, "sent": 10}
    received = {r.rcpt_tos[0]: r for r in smtp_backend.wait_for(10)}
    assert sorted(received) == sorted(m.recipient_email for m in messages)
    for message in messages:
        message.refresh_from_db()
        mail = received[message.recipient_email]
        assert message.status == Status.SENT and message.attempts == 1 and message.sent_at is not None
        # each row keeps its own provider id: the Message-ID its recipient's copy arrived with
        assert message.provider_message_id == mail.message["Message-ID"]
        assert mail.message["X-Notification-Id"] == str(message.pk)
        assert message.sent_via == f"{smtp_backend.host}:{smtp_backend.port}"
        [pdf] = [part for part in mail.message.iter_attachments()]
        assert pdf.get_content() == PDF
    assert len({m.provider_message_id for m in EmailMessage.objects.all()}) == 10


def test_ids_claimed_elsewhere_finished_or_repeated_are_skipped_and_nothing_is_sent_twice(
    default_templates, smtp_backend
):
    first, taken, third, fourth = queue_invoices(4)
    assert delivery.deliver(first.pk) == delivery.SENT
    EmailMessage.objects.filter(pk=taken.pk).update(status=Status.SENDING)  # another worker holds it

    counts = batches.deliver_many(message_ids=[first.pk, taken.pk, third.pk, str(fourth.pk), fourth.pk])

    assert counts == {"skipped": 2, "sent": 2}
    received = smtp_backend.wait_for(3)
    assert sorted(r.rcpt_tos[0] for r in received) == sorted(
        [first.recipient_email, third.recipient_email, fourth.recipient_email]
    )
    assert EmailMessage.objects.get(pk=taken.pk).status == Status.SENDING  # left to its owner
    assert list(EmailMessage.objects.filter(pk__in=[third.pk, fourth.pk]).values_list("attempts", flat=True)) == [1, 1]


def test_a_refused_recipient_fails_alone_and_the_rest_of_the_batch_is_sent(
    default_templates, settings, start_smtp_server
):
    server = start_smtp_server(rcpt_replies={"reseller1@techconnect.bj": "550 5.1.1 No such user"})
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = server.host, server.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    messages = queue_invoices(3)

    counts = batches.deliver_many(message_ids=[m.pk for m in messages])

    assert counts == {"skipped": 0, "sent": 2, "failed": 1}
    statuses = dict(EmailMessage.objects.values_list("recipient_email", "status"))
    assert statuses == {"reseller0@techconnect.bj": Status.SENT, "reseller1@techconnect.bj": Status.FAILED,
                        "reseller2@techconnect.bj": Status.SENT}
    refused = EmailMessage.objects.get(recipient_email="reseller1@techconnect.bj")
    assert refused.error_message.startswith("permanent:") and "No such user" in refused.error_message
    assert refused.provider_message_id == "" and refused.sent_at is None
    assert sorted(r.rcpt_tos[0] for r in server.wait_for(2)) == ["reseller0@techconnect.bj", "reseller2@techconnect.bj"]


@pytest.mark.smtp_delay(0.3)
@pytest.mark.parametrize("lease", [1, 0])  # 1: half of it is about two messages at 0.3 s each
def test_a_batch_that_outlives_half_its_lease_hands_the_rest_back_and_each_is_sent_once(
    default_templates, smtp_backend, settings, django_capture_on_commit_callbacks, lease
):
    """Against a slow server, the claims of the batch's tail would age past the sweep's lease.

    Even with no lease at all, each task sends its first message: the hand-backs end.
    """
    settings.EMAIL_SENDING_LEASE_SECONDS = lease
    messages = queue_invoices(6)

    with django_capture_on_commit_callbacks(execute=True) as published:
        counts = batches.deliver_many(message_ids=[m.pk for m in messages])

    assert counts["released"] > 0 and counts["sent"] + counts["released"] == 6
    assert published, "the rows handed back were published again"
    received = smtp_backend.wait_for(6)
    assert sorted(r.rcpt_tos[0] for r in received) == sorted(m.recipient_email for m in messages)
    rows = EmailMessage.objects.filter(pk__in=[m.pk for m in messages])
    assert set(rows.values_list("status", flat=True)) == {Status.SENT}
    assert set(rows.values_list("attempts", flat=True)) == {1}  # a hand-back is not an attempt


def test_a_test_key_message_in_a_batch_is_simulated_and_never_reaches_the_server(default_templates, smtp_backend):
    real, simulated = queue_invoices(2)
    EmailMessage.objects.filter(pk=simulated.pk).update(is_test=True)

    counts = batches.deliver_many(message_ids=[real.pk, simulated.pk])

    assert counts == {"skipped": 0, "sent": 2}
    assert [r.rcpt_tos[0] for r in smtp_backend.wait_for(1)] == [real.recipient_email]
    assert EmailMessage.objects.get(pk=simulated.pk).status == Status.DELIVERED
    assert EmailMessage.objects.get(pk=real.pk).status == Status.SENT


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("round_", range(5))
def test_one_claim_wins_when_four_workers_claim_one_message_at_once(default_templates, round_):
    """The guarantee every delivery rests on, raced for real on PostgreSQL."""
    require_postgres()
    [message] = queue_invoices(1)
    EmailMessage.objects.filter(pk=message.pk).update(status=Status.QUEUED)  # eager delivery sent it: queue again

    results = concurrently(4, lambda: claims.claim(message.pk))

    assert sorted(r is not None for r in results) == [False, False, False, True], results


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("round_", range(3))
def test_overlapping_batch_claims_split_the_ids_between_them(default_templates, round_):
    """Four workers claim the same twenty ids, each in its own order: every id goes to exactly one."""
    require_postgres()
    messages = queue_invoices(20)
    ids = [m.pk for m in messages]
    EmailMessage.objects.filter(pk__in=ids).update(status=Status.QUEUED, attempts=0)
    orders = [ids, ids[::-1], ids[10:] + ids[:10], ids[::2] + ids[1::2]]
    turn = iter(orders)

    results = concurrently(4, lambda: claims.claim_many(next(turn)))

    assert all(isinstance(r, list) for r in results), results
    claimed = [message.pk for result in results for message in result]
    assert sorted(claimed) == sorted(ids)  # all of them, none twice
    assert set(EmailMessage.objects.filter(pk__in=ids).values_list("status", "attempts")) == {(Status.SENDING, 1)}
