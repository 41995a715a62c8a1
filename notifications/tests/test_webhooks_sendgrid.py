"""SendGrid's event webhook on `/anymail/sendgrid/tracking/`.

Each payload follows the example of its event in SendGrid's Event Webhook reference,
https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event (delivered,
bounce, dropped, spamreport, unsubscribe, open, deferred), with the custom args our send
gave SendGrid merged in as SendGrid does. The message is sent through anymail's SendGrid
backend to a local stand-in for SendGrid's API, and the args are read from that request.
"""
from __future__ import annotations

import json

import pytest
from django.test import Client

from notifications.models import BounceType, DeliveryEvent, Message, EventType, Status
from notifications.services.sending import send_simple_mail
from notifications.tests.support.http import ESPServer, Reply
from notifications.tests.support.sns import basic_auth
from notifications.tests.support.webhooks import SECRET, RecordedEvents

pytestmark = pytest.mark.django_db

HOOK = "/anymail/sendgrid/tracking/"
SMTP_ID = "<14c5d75ce93.dfd.64b469@ismtpd-555>"
SG_MESSAGE_ID = "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0"


@pytest.fixture
def sendgrid_api(settings):
    server = ESPServer(Reply(status=202, body=b"")).start()
    settings.EMAIL_BACKEND = "anymail.backends.sendgrid.EmailBackend"
    settings.ANYMAIL = {"SENDGRID_API_KEY": "SG.test-key", "SENDGRID_API_URL": f"{server.url}/v3/",
                        "WEBHOOK_SECRET": [SECRET]}
    yield server
    server.stop()


@pytest.fixture
def sent(sendgrid_api, django_capture_on_commit_callbacks):
    """A message SendGrid accepted, and the custom args it will echo in every event."""
    with django_capture_on_commit_callbacks(execute=True):
        [message] = send_simple_mail("example@test.com", "Votre facture", "Bonjour.")
    message = Message.objects.get(pk=message.pk)
    assert message.status == Status.SENT
    [request] = sendgrid_api.requests
    [personalization] = request.json()["personalizations"]
    return message, {**request.json()["custom_args"], **personalization["custom_args"]}


def event(kind: str, custom_args: dict, event_id: str, **fields) -> dict:
    return {"email": "example@test.com", "timestamp": 1513299569, "smtp-id": SMTP_ID, "event": kind,
            "category": "cat facts", "sg_event_id": event_id, "sg_message_id": SG_MESSAGE_ID, **custom_args, **fields}


def post(events: list[dict]):
    return Client().post(HOOK, data=json.dumps(events), content_type="application/json", headers=basic_auth(SECRET))


def fresh(message):
    return Message.objects.get(pk=message.pk)


def test_delivered(sent):
    message, args = sent
    assert post([event("delivered", args, "rWVYmVk90MjZJ9iohOBa3w==", response="250 OK")]).status_code == 200
    message = fresh(message)
    assert message.status == Status.DELIVERED
    [stored] = message.events.all()
    assert (stored.provider, stored.event_type, stored.provider_event_id, stored.recipient) == (
        "sendgrid", EventType.DELIVERED, "rWVYmVk90MjZJ9iohOBa3w==", "example@test.com")
    assert stored.payload["response"] == "250 OK" and stored.provider_message_id == args["anymail_id"]


def test_bounce_is_permanent_with_its_classification(sent):
    message, args = sent
    post([event("bounce", args, "6g4ZI7SA-xmRDv57GoPIPw==", reason="500 unknown recipient", status="5.0.0",
                type="bounce", bounce_classification="Invalid Address")])
    message = fresh(message)
    assert (message.status, message.bounce_type, message.bounce_subtype) == (
        Status.BOUNCED, BounceType.PERMANENT, "Invalid Address")
    assert "500 unknown recipient" in message.events.get().detail


def test_a_blocked_bounce_is_temporary(sent):
    message, args = sent
    post([event("bounce", args, "blocked-1", reason="550 blocked by spam filter", status="5.7.1", type="blocked")])
    message = fresh(message)
    assert (message.status, message.bounce_type, message.bounce_subtype) == (Status.BOUNCED, BounceType.TEMPORARY, "5.7.1")


def test_dropped_sets_failed_with_its_reason(sent):
    message, args = sent
    post([event("dropped", args, "zmzJhfJgAfUSOW80yEbPyw==", reason="Bounced Address", status="5.0.0")])
    message = fresh(message)
    assert message.status == Status.FAILED
    assert message.error_message == "Dropped by SendGrid: Bounced Address"
    assert message.events.get().event_type == EventType.FAILED


def test_spamreport_is_a_complaint(sent):
    message, args = sent
    post([event("spamreport", args, "37nvH5QBz858KGVYCM4uOA==")])
    assert fresh(message).status == Status.COMPLAINT


def test_unsubscribe_is_stored_and_signalled_and_changes_no_status(sent, django_capture_on_commit_callbacks):
    message, args = sent
    with RecordedEvents() as recorded, django_capture_on_commit_callbacks(execute=True):
        post([event("delivered", args, "d-1"), event("unsubscribe", args, "zz_BjPgU_5pS-J8vlfB1sg==")])
    assert fresh(message).status == Status.DELIVERED
    assert [call["event"].event_type for call in recorded.calls] == ["delivered", "unsubscribed"]
    assert recorded.calls[1]["event"].recipient == "example@test.com"
    assert recorded.calls[1]["message"].pk == message.pk


def test_open_and_deferred_are_events_only(sent):
    message, args = sent
    post([
        event("deferred", args, "t7LEShmowp86DTdUW8M-GQ==", response="400 try again later", attempt="5"),
        event("open", args, "FOTFFO0ecsBE-zxFXfs6WA==", sg_machine_open=False, ip="255.255.255.255",
              useragent="Mozilla/4.0 (compatible; MSIE 6.1; Windows XP; .NET CLR 1.1.4322; .NET CLR 2.0.50727)"),
    ])
    assert fresh(message).status == Status.SENT
    assert list(fresh(message).events.values_list("event_type", flat=True).order_by("event_type")) == [
        "deferred", "opened"]


def test_an_event_without_our_id_maps_back_by_anymails_message_id(sent):
    message, args = sent
    post([event("delivered", {"anymail_id": args["anymail_id"]}, "no-notification-id")])
    assert fresh(message).status == Status.DELIVERED


def test_a_replayed_batch_is_stored_once_and_a_late_delivered_does_not_undo_a_bounce(sent):
    message, args = sent
    batch = [event("bounce", args, "b-1", reason="500 unknown recipient", type="bounce"),
             event("delivered", args, "d-1", response="250 OK")]  # SendGrid does not promise order
    assert post(batch).status_code == 200
    assert post(batch).status_code == 200
    assert DeliveryEvent.objects.count() == 2
    assert fresh(message).status == Status.BOUNCED


def test_an_event_for_an_unknown_message_is_stored_unmatched(sent):
    _message, _args = sent
    response = post([event("delivered", {"anymail_id": "not-ours", "notification_id": "not-a-uuid"}, "x-1")])
    assert response.status_code == 200
    assert DeliveryEvent.objects.get().message is None
