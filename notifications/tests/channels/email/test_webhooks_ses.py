"""Amazon SES events through SNS, on 004's `POST /api/v1/email/webhook` and anymail's
`/anymail/amazon_ses/tracking/`: the statuses and events they drive, and every way a
notification can arrive (twice, out of order, early, for no known message). The scenarios
every provider shares are written once in webhook_cases.py and run here by
`TestSESWebhookContract`; what follows them is SES's and SNS's own.

Payloads follow https://docs.aws.amazon.com/ses/latest/dg/notification-examples.html (see
support/webhooks.py) inside SNS messages signed as
https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html describes.
"""
from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs

import pytest
from django.test import Client
from django.utils import timezone

from notifications.models import DeliveryEvent, Message, Status
from notifications.core.outbox import drain
from notifications.channels.email.sending import send_simple_mail
from notifications.tests.support.http import ESPServer, Reply
from notifications.tests.support.sns import TOPIC_ARN, post_sns, signing
from notifications.tests.channels.email.webhook_cases import WebhookCases, fresh
from notifications.tests.support.webhooks import (
    SECRET,
    sendgrid_api,
    ses_api,
    ses_bounce,
    ses_complaint,
    ses_delivery,
)

pytestmark = pytest.mark.django_db

API_HOOK = "/api/v1/email/webhook"
ANYMAIL_HOOK = "/anymail/amazon_ses/tracking/"


@pytest.fixture
def signer(settings, tmp_path):
    with signing(settings, tmp_path, secrets=[SECRET]) as signer:
        yield signer


@pytest.fixture
def ses(settings):
    with ses_api(settings) as server:
        yield server


@pytest.fixture
def sent(ses, django_capture_on_commit_callbacks):
    """Send a message through SES (anymail's backend, a local SES API) and return its row, now `sent`."""

    def send(to: str = "jane@example.com", **kwargs) -> Message:
        with django_capture_on_commit_callbacks(execute=True):
            [message] = send_simple_mail(to, "Votre facture", "Bonjour.", **kwargs)
        message.refresh_from_db()
        return message

    return send


class TestSESWebhookContract(WebhookCases):
    """The contract of webhook_cases.py, for SES notifications inside signed SNS messages."""

    provider = "amazon_ses"
    routes = [API_HOOK, ANYMAIL_HOOK]
    permanent_subtype, permanent_detail = "NoEmail", "550 5.1.1"
    temporary_subtype = "MailboxFull"
    elsewhere = "sendgrid"
    complaint_detail = "abuse"

    @pytest.fixture(autouse=True)
    def _ses(self, signer, sent, settings, django_capture_on_commit_callbacks):
        self.signer, self.sent, self.settings = signer, sent, settings
        self.capture = django_capture_on_commit_callbacks

    @pytest.fixture(params=[API_HOOK, ANYMAIL_HOOK])
    def route(self, request):
        return request.param

    def send(self) -> Message:
        return self.sent()

    def send_elsewhere(self) -> Message:
        with sendgrid_api(self.settings), self.capture(execute=True):
            [message] = send_simple_mail("jane@example.com", "Votre facture", "Bonjour.")
        return Message.objects.get(pk=message.pk)

    def post(self, payload: dict, *, route: str | None = None):
        return post_sns(Client(), route or API_HOOK, payload)

    def delivered(self, message: Message, *, without_our_id: bool = False) -> dict:
        if not without_our_id:
            return self.signer.notification(ses_delivery(message))
        # Without "Include original headers", SES still gives commonHeaders.messageId: ours.
        payload = ses_delivery(message, headers=False)
        payload["mail"]["commonHeaders"] = {"messageId": f"<{message.pk.hex}@rgz.bj>"}
        return self.signer.notification(payload)

    def bounce(self, message: Message, *, permanent: bool = True, recipient: str | None = None) -> dict:
        recipients = [recipient] if recipient else None
        payload = (ses_bounce(message, subtype="NoEmail", recipients=recipients) if permanent
                   else ses_bounce(message, bounce_type="Transient", subtype="MailboxFull", recipients=recipients))
        return self.signer.notification(payload)

    def complaint(self, message: Message) -> dict:
        return self.signer.notification(ses_complaint(message))

    def unmatched(self, message: Message) -> dict:
        Message.objects.filter(pk=message.pk).delete()
        return self.signer.notification(ses_delivery(message))

    def event_id(self, payload: dict) -> str:
        return payload["MessageId"]

    def check_delivered(self, message: Message, event: DeliveryEvent, payload: dict) -> None:
        assert message.delivered_at == dt.datetime(2026, 12, 2, 3, 0, tzinfo=dt.UTC)  # the SNS Timestamp
        assert event.payload["delivery"]["smtpResponse"] == "250 ok:  Message 64111812 accepted"
        assert "250 ok" in event.detail


def test_subscription_confirmation_is_confirmed_by_its_subscribe_url_without_aws_credentials(signer, monkeypatch):
    """https://docs.aws.amazon.com/sns/latest/dg/SendMessageToHttp.prepare.html: the endpoint
    confirms with a GET of the SubscribeURL; no AWS credentials (issue 16: boto3's
    NoCredentialsError was a 500). AWS_ENDPOINT_URL_SNS stands in for the SNS host."""
    aws = ESPServer(Reply(body=(
        b'<ConfirmSubscriptionResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">'
        b"<ConfirmSubscriptionResult><SubscriptionArn>" + TOPIC_ARN.encode() + b":1</SubscriptionArn>"
        b"</ConfirmSubscriptionResult><ResponseMetadata><RequestId>r1</RequestId></ResponseMetadata>"
        b"</ConfirmSubscriptionResponse>"), headers={"Content-Type": "text/xml"})).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_SNS", aws.url)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    try:
        response = post_sns(Client(), API_HOOK, signer.subscription_confirmation(token="tok-123"))
    finally:
        aws.stop()
    assert response.status_code == 200, response.content
    [request] = aws.requests
    assert request.method == "GET"
    query = parse_qs(request.path.partition("?")[2])
    assert query["Action"] == ["ConfirmSubscription"]
    assert query["TopicArn"] == [TOPIC_ARN] and query["Token"] == ["tok-123"]


def test_a_subscription_confirmation_sns_cannot_take_now_is_a_503_so_sns_sends_it_again(signer, monkeypatch):
    aws = ESPServer(Reply(status=500, body=b"")).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_SNS", aws.url)
    try:
        response = post_sns(Client(), API_HOOK, signer.subscription_confirmation())
    finally:
        aws.stop()
    assert response.status_code == 503
    assert response.json()["codes"] == {"SubscribeURL": ["sns_confirmation_failed"]}


@pytest.mark.parametrize("subscribe_url", [
    "https://evil.example.com/?Action=ConfirmSubscription&TopicArn={topic}&Token=tok",
    "http://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn={topic}&Token=tok",
    "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn={topic}&Token=tok",  # another region
    "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe&TopicArn={topic}&Token=tok",
    "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn={topic}&Token=other",
])
def test_a_subscribe_url_off_the_sns_rules_is_never_fetched(signer, monkeypatch, subscribe_url):
    aws = ESPServer().start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_SNS", aws.url)
    message = signer.subscription_confirmation(token="tok")
    message = signer.sign({**message, "SubscribeURL": subscribe_url.format(topic=TOPIC_ARN)})
    try:
        response = post_sns(Client(), API_HOOK, message)
    finally:
        aws.stop()
    assert response.status_code == 403
    assert response.json()["codes"] == {"SubscribeURL": ["sns_not_verified"]}
    assert aws.requests == []



def test_one_notification_naming_two_recipients_stores_two_events(signer, sent, recording):
    message = sent(to="jane@example.com")
    Message.objects.filter(pk=message.pk)  # the cc rides on the same row
    notification = signer.notification(ses_delivery(message, recipients=["jane@example.com", "richard@example.com"]))
    with recording() as recorded:
        assert post_sns(Client(), API_HOOK, notification).status_code == 200
    events = DeliveryEvent.objects.order_by("recipient")
    assert [(e.recipient, e.provider_event_id, e.message_id) for e in events] == [
        ("jane@example.com", notification["MessageId"], message.pk),
        ("richard@example.com", notification["MessageId"], message.pk),
    ]
    assert len(recorded.calls) == 2
    assert fresh(message).status == Status.DELIVERED





def test_an_event_before_sent_is_kept_and_applied_when_the_message_is_sent(signer, sent, settings, recording):
    message = sent(send_at=timezone.now() + dt.timedelta(hours=1))
    assert message.status == Status.SCHEDULED
    with recording() as recorded:
        response = post_sns(Client(), API_HOOK, signer.notification(ses_delivery(message)))
    assert response.status_code == 200
    assert fresh(message).status == Status.SCHEDULED
    [event] = fresh(message).events.all()
    assert event.pending and len(recorded.calls) == 1
    Message.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())  # the test makes it due
    drain.drain_lane(lane=message.lane)
    message = fresh(message)
    assert message.status == Status.DELIVERED
    assert not message.events.get().pending




def test_signature_version_1_is_verified_too(signer, sent):
    message = sent()
    response = post_sns(Client(), API_HOOK, signer.notification(ses_delivery(message), version=1))
    assert response.status_code == 200
    assert fresh(message).status == Status.DELIVERED


def test_the_topic_validation_notification_is_accepted_and_stores_nothing(signer):
    notification = signer.notification("Successfully validated SNS topic for Amazon SES event publishing.")
    assert post_sns(Client(), API_HOOK, notification).status_code == 200
    assert not DeliveryEvent.objects.exists()


def test_staff_see_unmatched_events_in_the_admin(signer, sent):
    from notifications.access.groups import AUDITORS
    from notifications.tests.support.api import make_user

    message = sent(to="ghost@example.com")
    Message.objects.filter(pk=message.pk).delete()
    post_sns(Client(), API_HOOK, signer.notification(ses_bounce(message)))
    auditor = make_user("auditor", AUDITORS)
    auditor.is_staff = True
    auditor.save()
    client = Client()
    client.force_login(auditor)
    page = client.get("/admin/notifications/deliveryevent/", {"message__isempty": "1"})
    assert page.status_code == 200
    assert "ghost@example.com" in page.content.decode()
    event = DeliveryEvent.objects.get()
    detail = client.get(f"/admin/notifications/deliveryevent/{event.pk}/change/")
    assert detail.status_code == 200 and "bouncedRecipients" in detail.content.decode()
