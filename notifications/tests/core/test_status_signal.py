"""`message_status_changed(message, old, new)`: sent by the state machine once the change
is committed, for every row a transition changed, and never for one it did not."""
from __future__ import annotations

import logging
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from notifications.models import BounceType, Message, Status
from notifications.core.outbox import lifecycle
from notifications.core.outbox import drain
from notifications.core.outbox import sweep
from notifications.channels.email.sending import send_mail_template
from notifications.signals import message_status_changed
from notifications.tests.support.payloads import INVOICE_VARS

pytestmark = pytest.mark.django_db


@contextmanager
def listening(receiver):
    message_status_changed.connect(receiver)
    try:
        yield
    finally:
        message_status_changed.disconnect(receiver)


@contextmanager
def nobody_listening():
    """The service connects no receiver of its own (suppression follows provider events)."""
    assert not message_status_changed.has_listeners()
    yield


class Heard(list):
    def __call__(self, sender, *, message, old, new, **kwargs):
        self.append((message.address, old, new, message.status))


def invoices(*addresses: str, **options) -> list[Message]:
    return [send_mail_template("billing_invoice_monthly", address, INVOICE_VARS, **options)[0]
            for address in addresses]


def test_a_drain_announces_each_claim_and_each_sent_message_after_commit(
    default_templates, smtp_backend, django_capture_on_commit_callbacks
):
    queued, later = invoices("a@techconnect.bj", "b@techconnect.bj")
    scheduled = invoices("c@techconnect.bj", send_at=timezone.now() + timedelta(minutes=1))[0]
    due = timezone.now()  # its time has come: due at its send_at, as a scheduled row is
    Message.objects.filter(pk=scheduled.pk).update(next_attempt_at=due, send_at=due)
    heard = Heard()
    with listening(heard):
        with django_capture_on_commit_callbacks(execute=False) as pending:
            assert drain.drain_lane(lane=queued.lane) == {"sent": 3}
        assert heard == []  # nothing before the transactions commit
        for callback in pending:
            callback()

    assert sorted(heard) == sorted([
        ("a@techconnect.bj", Status.QUEUED, Status.SENDING, Status.SENT),  # the message as it is now
        ("b@techconnect.bj", Status.QUEUED, Status.SENDING, Status.SENT),
        ("c@techconnect.bj", Status.SCHEDULED, Status.SENDING, Status.SENT),
        ("a@techconnect.bj", Status.SENDING, Status.SENT, Status.SENT),
        ("b@techconnect.bj", Status.SENDING, Status.SENT, Status.SENT),
        ("c@techconnect.bj", Status.SENDING, Status.SENT, Status.SENT),
    ])


def test_only_rows_a_transition_changed_are_announced(default_templates, django_capture_on_commit_callbacks):
    first, second = invoices("a@techconnect.bj", "b@techconnect.bj")
    heard = Heard()
    with listening(heard), django_capture_on_commit_callbacks(execute=True):
        assert lifecycle.cancel(first.pk)
        assert not lifecycle.cancel(first.pk)  # already cancelled: no change, no signal
        assert not lifecycle.mark_delivered(second.pk, at=timezone.now())  # not sent: refused
    assert heard == [("a@techconnect.bj", Status.QUEUED, Status.CANCELLED, Status.CANCELLED)]


def test_provider_outcomes_and_the_sweep_are_announced(default_templates, django_capture_on_commit_callbacks,
                                                       settings):
    sent, overdue = invoices("a@techconnect.bj", "b@techconnect.bj")
    Message.objects.filter(pk=sent.pk).update(status=Status.SENT)  # the test arranges a sent message
    settings.OUTBOX_MAX_QUEUE_SECONDS = 1
    heard = Heard()
    with listening(heard), django_capture_on_commit_callbacks(execute=True):
        lifecycle.mark_bounced(sent.pk, bounce_type=BounceType.TEMPORARY)
        lifecycle.mark_delivered(sent.pk, at=timezone.now())
        sweep.sweep(now=timezone.now() + timedelta(seconds=5))
    assert heard == [
        ("a@techconnect.bj", Status.SENT, Status.BOUNCED, Status.DELIVERED),
        ("a@techconnect.bj", Status.BOUNCED, Status.DELIVERED, Status.DELIVERED),
        ("b@techconnect.bj", Status.QUEUED, Status.EXPIRED, Status.EXPIRED),
    ]


def test_a_receiver_that_raises_is_logged_and_stops_neither_the_others_nor_the_drain(
    default_templates, smtp_backend, django_capture_on_commit_callbacks, caplog
):
    [message] = invoices("a@techconnect.bj")

    def broken(sender, **kwargs):
        raise RuntimeError("integrator bug")

    heard = Heard()
    with (listening(broken), listening(heard), caplog.at_level(logging.ERROR),
          django_capture_on_commit_callbacks(execute=True)):
        assert drain.drain_lane(lane=message.lane) == {"sent": 1}
    assert [(old, new) for _, old, new, _ in heard] == [(Status.QUEUED, Status.SENDING), (Status.SENDING, Status.SENT)]
    assert "integrator bug" in caplog.text and "message_status_changed" in caplog.text
    message.refresh_from_db()
    assert message.status == Status.SENT


def test_without_a_receiver_a_transition_is_its_update_alone(default_templates, django_capture_on_commit_callbacks):
    [message] = invoices("a@techconnect.bj")
    Message.objects.filter(pk=message.pk).update(status=Status.SENT)  # the test arranges a sent message
    with (nobody_listening(), CaptureQueriesContext(connection) as quiet,
          django_capture_on_commit_callbacks() as pending):
        assert lifecycle.mark_delivered(message.pk, at=timezone.now())
    assert len(quiet) == 1 and pending == []
