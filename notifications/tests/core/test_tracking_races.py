"""Webhooks racing each other and the worker, on PostgreSQL: a notification delivered four
times at once is stored once, and one arriving while the drain records its message `sent`
is applied, never left pending."""
from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from notifications.models import DeliveryEvent, Message, Status
from notifications.core.outbox import lifecycle
from notifications.core import tracking
from notifications.channels.email.sending import send_simple_mail
from notifications.signals import delivery_event_recorded
from notifications.tests.support.concurrency import concurrently
from notifications.tests.support.services import require_postgres
from notifications.tests.support.sns import post_sns, signing
from notifications.tests.support.webhooks import SECRET, ses_delivery

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def signer(settings, tmp_path):
    require_postgres()
    with signing(settings, tmp_path, secrets=[SECRET]) as signer:
        yield signer


def claimed_message() -> Message:
    """A message a worker has claimed (`sending`), not yet recorded sent."""
    [message] = send_simple_mail("jane@example.com", "Sujet", "Texte.", send_at=timezone.now() + dt.timedelta(hours=1))
    Message.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())  # the test makes it due
    [claimed] = lifecycle.claim_due(lane=message.lane, limit=1)
    assert claimed.status == Status.SENDING
    return claimed


def test_the_same_notification_four_times_at_once_is_stored_once(signer):
    message = claimed_message()
    lifecycle.record_sent([lifecycle.Sent(message.pk, "<x@rgz.bj>", "ses", message.from_email, 1, timezone.now(),
                                          provider="amazon_ses")])
    notification = signer.notification(ses_delivery(message))
    signalled = []

    def on_event(sender, **kwargs):
        signalled.append(kwargs["event"].pk)

    delivery_event_recorded.connect(on_event, weak=False, dispatch_uid="race-test")
    try:
        responses = concurrently(4, lambda: post_sns(Client(), "/api/v1/email/webhook", notification).status_code)
    finally:
        delivery_event_recorded.disconnect(dispatch_uid="race-test")
    assert responses == [200] * 4
    assert DeliveryEvent.objects.count() == 1
    assert len(signalled) == 1
    assert Message.objects.get(pk=message.pk).status == Status.DELIVERED


def test_an_event_arriving_while_the_drain_records_the_message_sent_is_applied(signer, monkeypatch):
    message = claimed_message()
    recording, found = threading.Event(), threading.Event()
    results = {}
    find_messages = tracking.find_messages

    def find_and_tell(events, **options):
        rows = find_messages(events, **options)
        found.set()  # the webhook has read the message while the drain's write is uncommitted
        return rows

    monkeypatch.setattr(tracking, "find_messages", find_and_tell)

    def drain_records_sent():
        try:
            with transaction.atomic():
                lifecycle.record_sent([lifecycle.Sent(message.pk, "<x@rgz.bj>", "ses", message.from_email, 1,
                                                      timezone.now(), provider="amazon_ses")])
                tracking.apply_pending([message.pk])
                recording.set()
                found.wait(10)
                time.sleep(0.3)  # the webhook goes on to lock the row meanwhile
        finally:
            connection.close()

    def webhook():
        try:
            recording.wait(10)
            results["status"] = post_sns(Client(), "/api/v1/email/webhook", signer.notification(ses_delivery(message))
                                         ).status_code
        finally:
            connection.close()

    threads = [threading.Thread(target=drain_records_sent), threading.Thread(target=webhook)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results["status"] == 200
    assert Message.objects.get(pk=message.pk).status == Status.DELIVERED
    assert not DeliveryEvent.objects.get().pending
