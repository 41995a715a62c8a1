"""SendGrid's event webhook on `/anymail/sendgrid/tracking/`.

Each payload follows the example of its event in SendGrid's Event Webhook reference,
https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event (delivered,
bounce, dropped, spamreport, unsubscribe, open, deferred), with the custom args our send
gave SendGrid merged in as SendGrid does. The message is sent through anymail's SendGrid
backend to a local stand-in for SendGrid's API, and the args are read from that request.
The scenarios every provider shares are written once in webhook_cases.py and run here by
`TestSendGridWebhookContract`; what follows them is SendGrid's own.
"""
from __future__ import annotations

import json

import pytest
from django.test import Client

from notifications.models import DeliveryEvent, Message, EventType, Status
from notifications.channels.email.sending import send_simple_mail
from notifications.tests.support.http import ESPServer, Reply
from notifications.tests.support.sns import basic_auth
from notifications.tests.channels.email.webhook_cases import WebhookCases, fresh
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


def send_through(sendgrid_api: ESPServer, capture) -> tuple[Message, dict]:
    """A message SendGrid accepted, and the custom args it will echo in every event."""
    with capture(execute=True):
        [message] = send_simple_mail("example@test.com", "Votre facture", "Bonjour.")
    message = Message.objects.get(pk=message.pk)
    assert message.status == Status.SENT
    request = sendgrid_api.requests[-1]
    [personalization] = request.json()["personalizations"]
    return message, {**request.json()["custom_args"], **personalization["custom_args"]}


@pytest.fixture
def sent(sendgrid_api, django_capture_on_commit_callbacks):
    """A message SendGrid accepted, and the custom args it will echo in every event."""
    message, args = send_through(sendgrid_api, django_capture_on_commit_callbacks)
    assert len(sendgrid_api.requests) == 1
    return message, args


def event(kind: str, custom_args: dict, event_id: str, **fields) -> dict:
    return {"email": "example@test.com", "timestamp": 1513299569, "smtp-id": SMTP_ID, "event": kind,
            "category": "cat facts", "sg_event_id": event_id, "sg_message_id": SG_MESSAGE_ID, **custom_args, **fields}


def post(events: list[dict]):
    return Client().post(HOOK, data=json.dumps(events), content_type="application/json", headers=basic_auth(SECRET))


class TestSendGridWebhookContract(WebhookCases):
    """The contract of webhook_cases.py, for SendGrid's events (each posted alone here)."""

    provider = "sendgrid"
    routes = [HOOK]
    permanent_subtype, permanent_detail = "Invalid Address", "500 unknown recipient"
    temporary_subtype = "5.7.1"
    elsewhere = "smtp"
    complaint_detail = ""  # a spamreport carries no text

    @pytest.fixture(autouse=True)
    def _sendgrid(self, request, sendgrid_api, settings, django_capture_on_commit_callbacks):
        self.request, self.api, self.settings = request, sendgrid_api, settings
        self.capture = django_capture_on_commit_callbacks
        self.custom_args: dict = {}  # per message id, what our send gave SendGrid

    @pytest.fixture
    def route(self):
        return HOOK

    def send(self) -> Message:
        message, args = send_through(self.api, self.capture)
        self.custom_args[message.pk] = args
        return message

    def send_elsewhere(self) -> Message:
        """Through SMTP to the test's server, as the `smtp_backend` fixture sends."""
        smtp_server = self.request.getfixturevalue("smtp_server")  # started for this test only
        backend = self.settings.EMAIL_BACKEND
        self.settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        self.settings.EMAIL_HOST, self.settings.EMAIL_PORT = smtp_server.host, smtp_server.port
        self.settings.EMAIL_USE_TLS = self.settings.EMAIL_USE_SSL = False
        try:
            with self.capture(execute=True):
                [message] = send_simple_mail("example@test.com", "Votre facture", "Bonjour.")
        finally:
            self.settings.EMAIL_BACKEND = backend
        self.custom_args[message.pk] = {"notification_id": str(message.pk)}
        return Message.objects.get(pk=message.pk)

    def post(self, payload: dict, *, route: str | None = None):
        return post([payload])

    def delivered(self, message: Message, *, without_our_id: bool = False) -> dict:
        args = self.custom_args[message.pk]
        if without_our_id:
            return event("delivered", {"anymail_id": args["anymail_id"]}, "no-notification-id")
        return event("delivered", args, "rWVYmVk90MjZJ9iohOBa3w==", response="250 OK")

    def bounce(self, message: Message, *, permanent: bool = True, recipient: str | None = None) -> dict:
        args, email = self.custom_args[message.pk], {"email": recipient} if recipient else {}
        if permanent:
            return event("bounce", args, "6g4ZI7SA-xmRDv57GoPIPw==", reason="500 unknown recipient", status="5.0.0",
                         type="bounce", bounce_classification="Invalid Address", **email)
        return event("bounce", args, "blocked-1", reason="550 blocked by spam filter", status="5.7.1", type="blocked",
                     **email)

    def complaint(self, message: Message) -> dict:
        return event("spamreport", self.custom_args[message.pk], "37nvH5QBz858KGVYCM4uOA==")

    def unmatched(self, message: Message) -> dict:
        return event("delivered", {"anymail_id": "not-ours", "notification_id": "not-a-uuid"}, "x-1")

    def event_id(self, payload: dict) -> str:
        return payload["sg_event_id"]

    def check_delivered(self, message: Message, event: DeliveryEvent, payload: dict) -> None:
        assert event.payload["response"] == "250 OK"
        assert event.provider_message_id == self.custom_args[message.pk]["anymail_id"]



def test_dropped_sets_failed_with_its_reason(sent):
    message, args = sent
    post([event("dropped", args, "zmzJhfJgAfUSOW80yEbPyw==", reason="Bounced Address", status="5.0.0")])
    message = fresh(message)
    assert message.status == Status.FAILED
    assert message.error_message == "Dropped by SendGrid: Bounced Address"
    assert message.events.get().event_type == EventType.FAILED



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



def test_a_replayed_batch_is_stored_once_and_a_late_delivered_does_not_undo_a_bounce(sent):
    message, args = sent
    batch = [event("bounce", args, "b-1", reason="500 unknown recipient", type="bounce"),
             event("delivered", args, "d-1", response="250 OK")]  # SendGrid does not promise order
    assert post(batch).status_code == 200
    assert post(batch).status_code == 200
    assert DeliveryEvent.objects.count() == 2
    assert fresh(message).status == Status.BOUNCED
