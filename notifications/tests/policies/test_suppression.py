"""The suppression list: a permanent bounce or a complaint stops all mail to that recipient,
an unsubscribe stops marketing mail; checked when a send is written and when a worker
claims a queued row. Bounces and complaints come in as a provider's normalized event
(`core.tracking.record`, what every tracking webhook calls); the signals run after
commit, as in production."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from notifications.access.groups import ADMINISTRATORS, AUDITORS, SENDERS
from notifications.models import (
    BounceType,
    DeliveryEvent,
    Message,
    EventType,
    Kind,
    Reason,
    Scope,
    Status,
    Suppression,
)
from notifications.core.outbox import drain
from notifications.core import tracking
from notifications.channels.email.sending import send_mail_template, send_simple_mail
from notifications.authoring.versions import create_template
from notifications.signals import delivery_event_recorded, delivery_events_recorded, recipient_suppressed
from notifications.tests.support.api import ApiClient, create_key, make_user
from notifications.tests.support.payloads import INVOICE, INVOICE_VARS

pytestmark = pytest.mark.django_db

ALICE, BOB = "alice@techconnect.bj", "bob@techconnect.bj"


@pytest.fixture
def sender(default_templates):
    return ApiClient(create_key(make_user("billing-service", SENDERS)))


@pytest.fixture
def run_on_commit(django_capture_on_commit_callbacks):
    """Run what waits for a commit (wake-ups, drains, signals), as after a real commit."""
    def run(action, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return action(*args, **kwargs)
    return run


def send_invoice(sender, run_on_commit, to: str) -> dict[str, str]:
    response = run_on_commit(sender.post, "/api/v1/email/send", {**INVOICE, "to": to})
    assert response.status_code == 201, response.content
    return {item["to"]: item for item in response.json()["items"]}


def report(message_id, run_on_commit, *, event_type: str, bounce_type: str = "", recipient: str = "") -> None:
    """What a tracking webhook does: the provider's event, normalized, stored and applied; from
    the provider that took the message (the SMTP server), as only its events apply."""
    run_on_commit(tracking.record, tracking.ProviderEvent(
        provider="smtp", event_type=event_type, occurred_at=timezone.now(), notification_id=str(message_id),
        provider_event_id=f"evt-{uuid.uuid4().hex}", recipient=recipient, bounce_type=bounce_type,
        bounce_subtype="general" if bounce_type else "", detail="550 5.1.1 The email account does not exist.",
    ))


def bounce(message_id, run_on_commit, *, bounce_type: str, recipient: str = "") -> None:
    report(message_id, run_on_commit, event_type=EventType.BOUNCED, bounce_type=bounce_type, recipient=recipient)


def test_a_permanent_bounce_on_one_of_two_recipients_suppresses_exactly_that_one(
    sender, smtp_backend, run_on_commit
):
    first = send_invoice(sender, run_on_commit, f"{ALICE},{BOB}")
    assert {r.rcpt_tos[0] for r in smtp_backend.wait_for(2)} == {ALICE, BOB}
    assert {item["status"] for item in first.values()} == {"queued"}  # answered before the drain ran
    assert set(Message.objects.values_list("status", flat=True)) == {Status.SENT}

    bounce(first[ALICE]["id"], run_on_commit, bounce_type=BounceType.PERMANENT)

    [suppression] = Suppression.objects.all()
    assert (suppression.address, suppression.scope, suppression.reason) == (ALICE, Scope.ALL, Reason.BOUNCE)
    assert suppression.source_event.message_id == Message.objects.get(pk=first[ALICE]["id"]).pk
    assert "does not exist" in suppression.detail

    # The next send: Alice (written in another case) is suppressed with the reason, Bob is sent.
    second = send_invoice(sender, run_on_commit, f"{ALICE.upper()},{BOB}")
    assert second[ALICE.upper()]["status"] == "suppressed"
    assert second[BOB]["status"] == "queued"
    refused = Message.objects.get(pk=second[ALICE.upper()]["id"])
    assert refused.status == Status.SUPPRESSED and refused.next_attempt_at is None
    assert ALICE in refused.error_message and "permanent bounce" in refused.error_message
    assert Message.objects.get(pk=second[BOB]["id"]).status == Status.SENT
    smtp_backend.wait_for(3)
    assert [r.rcpt_tos for r in smtp_backend.received[2:]] == [[BOB]]  # nothing more went to Alice

    # The internal API reports it too.
    [again] = send_mail_template("billing_invoice_monthly", ALICE, INVOICE_VARS)
    assert again.status == Status.SUPPRESSED and "suppression list" in again.error_message


def test_a_transient_bounce_suppresses_nothing(sender, smtp_backend, run_on_commit):
    first = send_invoice(sender, run_on_commit, f"{ALICE},{BOB}")
    smtp_backend.wait_for(2)

    bounce(first[ALICE]["id"], run_on_commit, bounce_type=BounceType.TEMPORARY)

    assert Message.objects.get(pk=first[ALICE]["id"]).status == Status.BOUNCED
    assert not Suppression.objects.exists()
    assert send_invoice(sender, run_on_commit, ALICE)[ALICE]["status"] == "queued"


def test_a_temporary_bounce_that_turns_permanent_suppresses(sender, smtp_backend, run_on_commit):
    first = send_invoice(sender, run_on_commit, ALICE)
    smtp_backend.wait_for(1)
    bounce(first[ALICE]["id"], run_on_commit, bounce_type=BounceType.TEMPORARY)
    bounce(first[ALICE]["id"], run_on_commit, bounce_type=BounceType.PERMANENT)
    assert list(Suppression.objects.values_list("address", "reason")) == [(ALICE, Reason.BOUNCE)]


def test_a_complaint_suppresses_all_mail_and_fires_recipient_suppressed(sender, smtp_backend, run_on_commit):
    heard = []

    def on_suppressed(sender, *, suppression, address, scope, **kwargs):
        heard.append((address, scope, suppression.reason))

    recipient_suppressed.connect(on_suppressed)
    try:
        first = send_invoice(sender, run_on_commit, BOB)
        smtp_backend.wait_for(1)
        report(first[BOB]["id"], run_on_commit, event_type=EventType.COMPLAINT)
        report(first[BOB]["id"], run_on_commit, event_type=EventType.COMPLAINT)  # a second report changes nothing
    finally:
        recipient_suppressed.disconnect(on_suppressed)

    assert heard == [(BOB, Scope.ALL, Reason.COMPLAINT)]
    assert Suppression.objects.get().reason == Reason.COMPLAINT
    [message] = send_simple_mail(BOB, "Maintenance", "Coupure prévue.")
    assert message.status == Status.SUPPRESSED


def test_a_test_keys_simulated_bounce_never_suppresses_a_real_address(default_templates, run_on_commit):
    tester = ApiClient(create_key(make_user("tester", SENDERS), test=True))
    response = run_on_commit(tester.post, "/api/v1/email/send", {**INVOICE, "to": "bounce@simulator.invalid"})
    [item] = response.json()["items"]
    assert Message.objects.get(pk=item["id"]).status == Status.BOUNCED
    # Even a real-looking address bounced on a test message suppresses nothing.
    response = run_on_commit(tester.post, "/api/v1/email/send", {**INVOICE, "to": ALICE})
    [item] = response.json()["items"]
    bounce(item["id"], run_on_commit, bounce_type=BounceType.PERMANENT)
    assert not Suppression.objects.exists()


def test_mail_queued_or_scheduled_before_the_suppression_is_suppressed_at_claim(default_templates, smtp_backend):
    [queued] = send_mail_template("billing_invoice_monthly", ALICE, INVOICE_VARS)
    [scheduled] = send_mail_template("billing_invoice_monthly", ALICE, INVOICE_VARS,
                                     send_at=timezone.now() + timedelta(minutes=5))
    [other] = send_mail_template("billing_invoice_monthly", BOB, INVOICE_VARS)
    Suppression.objects.create(address=ALICE, scope=Scope.ALL, reason=Reason.BOUNCE)
    due = timezone.now()  # its time has come
    Message.objects.filter(pk=scheduled.pk).update(next_attempt_at=due, send_at=due)

    assert drain.drain_lane(lane=queued.lane) == {"suppressed": 2, "sent": 1}

    assert [r.rcpt_tos for r in smtp_backend.wait_for(1)] == [[BOB]]
    for message in (queued, scheduled):
        message.refresh_from_db()
        assert message.status == Status.SUPPRESSED and message.attempts == 0
        assert "suppression list" in message.error_message and not message.delivery_attempts.exists()
    other.refresh_from_db()
    assert other.status == Status.SENT


def test_the_claim_check_is_one_query_per_batch_whatever_its_size(default_templates, smtp_backend, settings):
    Suppression.objects.create(address="nobody@techconnect.bj", scope=Scope.ALL, reason=Reason.BOUNCE)

    def queries_of_a_drain(count: int) -> int:
        messages = [send_mail_template("billing_invoice_monthly", f"r{count}-{i}@techconnect.bj", INVOICE_VARS)[0]
                    for i in range(count)]
        with CaptureQueriesContext(connection) as captured:
            assert drain.drain_lane(lane=messages[0].lane) == {"sent": count}
        assert sum("notifications_suppression" in q["sql"] for q in captured) == 1
        return len(captured)

    assert queries_of_a_drain(2) == queries_of_a_drain(20)


@pytest.fixture
def promo(default_templates):
    return create_template(key="promo_fibre", kind=Kind.MARKETING, versions={
        "fr": {"subject": "Offre fibre", "html_content": "<p>Passez à la fibre.</p>"},
    })


def unsubscribe(message: Message, run_on_commit) -> DeliveryEvent:
    """What the tracking webhooks send for SendGrid's `unsubscribe`: a stored event, then the signals."""
    def record():
        event = DeliveryEvent.objects.create(message=message, event_type="unsubscribed", provider="sendgrid",
                                             occurred_at=timezone.now(), detail="Unsubscribed from the link.")
        delivery_event_recorded.send(sender=DeliveryEvent, event=event, message=message)
        delivery_events_recorded.send(sender=DeliveryEvent, events=[(event, message)])
        return event
    return run_on_commit(record)


def test_an_unsubscribe_stops_marketing_mail_only(promo, run_on_commit):
    [first] = send_mail_template("promo_fibre", ALICE, {})
    event = unsubscribe(first, run_on_commit)

    [suppression] = Suppression.objects.all()
    assert (suppression.address, suppression.scope, suppression.reason) == (ALICE, Scope.MARKETING,
                                                                          Reason.UNSUBSCRIBE)
    assert suppression.source_event == event
    [marketing] = send_mail_template("promo_fibre", ALICE, {})
    [invoice] = send_mail_template("billing_invoice_monthly", ALICE, INVOICE_VARS)
    assert marketing.status == Status.SUPPRESSED and "marketing mail" in marketing.error_message
    assert invoice.status == Status.QUEUED


def test_an_unsubscribe_holds_back_queued_marketing_mail_but_not_an_invoice(promo, smtp_backend, run_on_commit):
    [queued_promo] = send_mail_template("promo_fibre", ALICE, {})
    [queued_invoice] = send_mail_template("billing_invoice_monthly", ALICE, INVOICE_VARS)
    Suppression.objects.create(address=ALICE, scope=Scope.MARKETING, reason=Reason.UNSUBSCRIBE)

    assert drain.drain_lane(lane=queued_promo.lane) == {"suppressed": 1, "sent": 1}
    [received] = smtp_backend.wait_for(1)
    assert received.message["Subject"] == queued_invoice.subject
    queued_promo.refresh_from_db()
    assert queued_promo.status == Status.SUPPRESSED


def test_a_permanent_bounce_deactivates_the_users_account_when_configured(sender, smtp_backend, run_on_commit,
                                                                          settings):
    settings.EMAIL_DEACTIVATE_USER_ON_PERMANENT_FAILURE = True
    user = get_user_model().objects.create_user(username="alice", email="Alice@TechConnect.bj", password="x" * 12)
    bystander = get_user_model().objects.create_user(username="bob", email=BOB, password="x" * 12)
    first = send_invoice(sender, run_on_commit, f"{ALICE},{BOB}")
    smtp_backend.wait_for(2)

    bounce(first[ALICE]["id"], run_on_commit, bounce_type=BounceType.PERMANENT)

    user.refresh_from_db()
    bystander.refresh_from_db()
    assert user.is_active is False and bystander.is_active is True


def test_without_the_setting_no_account_is_deactivated(sender, smtp_backend, run_on_commit):
    user = get_user_model().objects.create_user(username="alice", email=ALICE, password="x" * 12)
    first = send_invoice(sender, run_on_commit, ALICE)
    smtp_backend.wait_for(1)
    bounce(first[ALICE]["id"], run_on_commit, bounce_type=BounceType.PERMANENT)
    user.refresh_from_db()
    assert user.is_active is True and Suppression.objects.count() == 1


# --- the admin: lifted by staff with delete_suppression, recorded ---------------------------

def admin_client(username: str, *groups: str) -> tuple[Client, object]:
    user = make_user(username, *groups)
    user.is_staff = True
    user.save()
    client = Client(headers={"Accept-Language": "en"})
    client.force_login(user)
    return client, user


def test_an_administrator_lifts_a_suppression_and_the_row_records_who_and_when(default_templates):
    suppression = Suppression.objects.create(address=ALICE, scope=Scope.ALL, reason=Reason.BOUNCE)
    client, user = admin_client("chief", ADMINISTRATORS)

    page = client.get("/admin/notifications/suppression/")
    assert page.status_code == 200 and ALICE in page.content.decode()
    response = client.post("/admin/notifications/suppression/",
                           {"action": "lift", "_selected_action": [str(suppression.pk)]}, follow=True)
    assert response.status_code == 200

    suppression.refresh_from_db()
    assert suppression.lifted_by == user and suppression.lifted_at is not None
    assert Suppression.objects.count() == 1  # kept, not deleted
    [message] = send_mail_template("billing_invoice_monthly", ALICE, INVOICE_VARS)
    assert message.status == Status.QUEUED
    # Suppressed again later: a new row, the lifted one stays in the history.
    Suppression.objects.create(address=ALICE, scope=Scope.ALL, reason=Reason.COMPLAINT)
    assert Suppression.objects.active().count() == 1 and Suppression.objects.count() == 2


def test_an_auditor_reads_the_list_but_cannot_lift_add_or_delete(default_templates):
    suppression = Suppression.objects.create(address=ALICE, scope=Scope.ALL, reason=Reason.BOUNCE)
    client, _ = admin_client("reader", AUDITORS)

    page = client.get("/admin/notifications/suppression/")
    assert page.status_code == 200 and ALICE in page.content.decode()
    assert 'value="lift"' not in page.content.decode()
    client.post("/admin/notifications/suppression/", {"action": "lift", "_selected_action": [str(suppression.pk)]})
    suppression.refresh_from_db()
    assert suppression.lifted_at is None
    assert client.get("/admin/notifications/suppression/add/").status_code == 403
    assert client.get(f"/admin/notifications/suppression/{suppression.pk}/delete/").status_code == 403


def test_staff_add_a_suppression_by_hand_normalised_and_recorded(default_templates):
    client, user = admin_client("chief", ADMINISTRATORS)
    response = client.post("/admin/notifications/suppression/add/",
                           {"address": "  Carol@TechConnect.BJ ", "scope": "all", "detail": "Asked by phone."})
    assert response.status_code == 302, response.content.decode()[:2000]
    suppression = Suppression.objects.get()
    assert (suppression.address, suppression.reason, suppression.created_by) == (
        "carol@techconnect.bj", Reason.MANUAL, user)

    again = client.post("/admin/notifications/suppression/add/",
                        {"address": "carol@techconnect.bj", "scope": "all"})
    assert again.status_code == 200 and "already suppressed" in again.content.decode()
    bad = client.post("/admin/notifications/suppression/add/", {"address": "not an address", "scope": "all"})
    assert bad.status_code == 200 and Suppression.objects.count() == 1
