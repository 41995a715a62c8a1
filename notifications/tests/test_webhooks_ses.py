"""Amazon SES events through SNS, on 004's `POST /api/v1/email/webhook` and anymail's
`/anymail/amazon_ses/tracking/`: the statuses and events they drive, and every way a
notification can arrive (twice, out of order, early, for no known message).

Payloads follow https://docs.aws.amazon.com/ses/latest/dg/notification-examples.html (see
support/webhooks.py) inside SNS messages signed as
https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html describes.
"""
from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
from urllib.parse import parse_qs

import pytest
from django.test import Client
from django.utils import timezone

from notifications.models import BounceType, DeliveryEvent, Message, EventType, Status
from notifications.services import outbox
from notifications.services.sending import send_simple_mail
from notifications.tests.support.http import ESPServer, Reply
from notifications.tests.support.sns import TOPIC_ARN, post_sns, signing
from notifications.tests.support.webhooks import (
    SECRET,
    RecordedEvents,
    ses_bounce,
    ses_complaint,
    ses_api,
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


@pytest.fixture
def recording(django_capture_on_commit_callbacks):
    """`with recording() as recorded:` runs commit callbacks and collects `delivery_event_recorded`."""

    @contextmanager
    def record():
        with RecordedEvents() as recorded, django_capture_on_commit_callbacks(execute=True):
            yield recorded

    return record


def fresh(message: Message) -> Message:
    return Message.objects.get(pk=message.pk)


@pytest.mark.parametrize("route", [API_HOOK, ANYMAIL_HOOK])
def test_delivery_sets_delivered_and_stores_the_event(signer, sent, route, recording):
    message = sent()
    assert message.status == Status.SENT
    notification = signer.notification(ses_delivery(message))
    with recording() as recorded:
        response = post_sns(Client(), route, notification)
    assert response.status_code == 200, response.content
    message = fresh(message)
    assert message.status == Status.DELIVERED
    assert message.delivered_at == dt.datetime(2026, 12, 2, 3, 0, tzinfo=dt.UTC)  # the SNS Timestamp
    [event] = DeliveryEvent.objects.filter(message=message)
    assert (event.event_type, event.provider, event.provider_event_id, event.recipient) == (
        EventType.DELIVERED, "amazon_ses", notification["MessageId"], "jane@example.com")
    assert event.payload["delivery"]["smtpResponse"] == "250 ok:  Message 64111812 accepted"
    assert "250 ok" in event.detail
    assert [(call["event"].pk, call["message"].pk) for call in recorded.calls] == [(event.pk, message.pk)]


def test_permanent_bounce_reads_type_and_subtype_from_the_ses_payload(signer, sent):
    message = sent()
    response = post_sns(Client(), API_HOOK, signer.notification(ses_bounce(message, subtype="NoEmail")))
    assert response.status_code == 200
    message = fresh(message)
    assert (message.status, message.bounce_type, message.bounce_subtype) == (
        Status.BOUNCED, BounceType.PERMANENT, "NoEmail")
    [event] = message.events.all()
    assert (event.event_type, event.bounce_type, event.recipient) == (EventType.BOUNCED, "permanent", message.address)
    assert "550 5.1.1" in event.detail


def test_transient_bounce_is_temporary_and_a_later_delivery_wins(signer, sent):
    message = sent()
    post_sns(Client(), API_HOOK, signer.notification(ses_bounce(message, bounce_type="Transient", subtype="MailboxFull")))
    message = fresh(message)
    assert (message.status, message.bounce_type, message.bounce_subtype) == (
        Status.BOUNCED, BounceType.TEMPORARY, "MailboxFull")
    post_sns(Client(), API_HOOK, signer.notification(ses_delivery(message)))
    assert fresh(message).status == Status.DELIVERED
    assert list(fresh(message).events.values_list("event_type", flat=True)) == ["bounced", "delivered"]


def test_complaint(signer, sent):
    message = sent()
    response = post_sns(Client(), ANYMAIL_HOOK, signer.notification(ses_complaint(message)))
    assert response.status_code == 200
    assert fresh(message).status == Status.COMPLAINT
    [event] = fresh(message).events.all()
    assert event.event_type == EventType.COMPLAINT and "abuse" in event.detail


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


def test_replayed_notification_is_stored_once(signer, sent, recording):
    message = sent()
    notification = signer.notification(ses_delivery(message))
    with recording() as recorded:
        first = post_sns(Client(), API_HOOK, notification)
        again = post_sns(Client(), API_HOOK, notification)
        other_route = post_sns(Client(), ANYMAIL_HOOK, notification)
    assert (first.status_code, again.status_code, other_route.status_code) == (200, 200, 200)
    assert DeliveryEvent.objects.count() == 1
    assert len(recorded.calls) == 1


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


def test_a_bounce_for_another_address_on_the_message_does_not_bounce_it(signer, sent):
    message = sent()
    post_sns(Client(), API_HOOK, signer.notification(ses_bounce(message, recipients=["richard@example.com"])))
    assert fresh(message).status == Status.SENT
    assert fresh(message).events.get().recipient == "richard@example.com"


def test_reordered_events_never_move_a_status_backwards(signer, sent):
    message = sent()
    post_sns(Client(), API_HOOK, signer.notification(ses_bounce(message)))
    post_sns(Client(), API_HOOK, signer.notification(ses_delivery(message)))  # delivered arrives late
    post_sns(Client(), API_HOOK, signer.notification(ses_bounce(message, bounce_type="Transient")))
    message = fresh(message)
    assert (message.status, message.bounce_type) == (Status.BOUNCED, BounceType.PERMANENT)
    assert message.events.count() == 3


def test_complaint_does_not_replace_a_permanent_bounce(signer, sent):
    message = sent()
    post_sns(Client(), API_HOOK, signer.notification(ses_bounce(message)))
    post_sns(Client(), API_HOOK, signer.notification(ses_complaint(message)))
    assert fresh(message).status == Status.BOUNCED


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
    outbox.drain_lane(lane=message.lane)
    message = fresh(message)
    assert message.status == Status.DELIVERED
    assert not message.events.get().pending


def test_an_event_for_no_known_message_is_stored_unmatched_and_answered_200(signer, sent, recording):
    message = sent()
    Message.objects.filter(pk=message.pk).delete()
    with recording() as recorded:
        response = post_sns(Client(), API_HOOK, signer.notification(ses_delivery(message)))
    assert response.status_code == 200
    [event] = DeliveryEvent.objects.all()
    assert event.message is None and event.recipient == "jane@example.com"
    assert recorded.calls[0]["message"] is None


def test_mail_sent_over_smtp_without_original_headers_maps_back_by_our_message_id(signer, sent):
    """Without "Include original headers", SES still gives commonHeaders.messageId: ours."""
    message = sent()
    payload = ses_delivery(message, headers=False)
    payload["mail"]["commonHeaders"] = {"messageId": f"<{message.pk.hex}@rgz.bj>"}
    post_sns(Client(), API_HOOK, signer.notification(payload))
    assert fresh(message).status == Status.DELIVERED


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
    from notifications.groups import AUDITORS
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
