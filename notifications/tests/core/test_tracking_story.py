"""The whole story (004: "send email → delivery callback → audit trail"): a send through
the API, the SMTP server receives it, Amazon SES reports the delivery through SNS on
`POST /api/v1/email/webhook`, and the message's history shows it `delivered`.

Mail goes to SES over SMTP here (a relay of our own in front of SES: `EMAIL_SMTP_PROVIDER`),
so SES's message id is not ours: the notification maps back
by our `X-Notification-Id`, read from the mail the server received, among the original
headers SES returns (https://docs.aws.amazon.com/ses/latest/dg/notification-contents.html#mail-object).
"""
from __future__ import annotations

import pytest
from django.test import Client

from notifications.access.groups import SENDERS
from notifications.models import Status
from notifications.tests.support.api import ApiClient, assert_matches_schema, create_key, make_user
from notifications.tests.support.payloads import WELCOME
from notifications.tests.support.sns import CERT_URL, TOPIC_ARN, SNSSigner, post_sns
from notifications.tests.support.webhooks import SECRET, ses_delivery
from notifications.channels.email.webhooks import sns

pytestmark = pytest.mark.django_db


def test_send_receive_delivery_webhook_then_history_shows_delivered(
    default_templates, smtp_backend, settings, tmp_path, django_capture_on_commit_callbacks
):
    signer = SNSSigner(tmp_path)
    settings.EMAIL_SMTP_PROVIDER = "amazon_ses"
    settings.EMAIL_WEBHOOK_SECRET_AMAZON_SES = [SECRET]
    settings.EMAIL_SES_SNS_TOPIC_ARNS = [TOPIC_ARN]
    settings.EMAIL_SNS_SIGNING_CERTS = [f"{CERT_URL}={signer.cert_path}"]
    sns.forget_certificates()
    api = ApiClient(create_key(make_user("services", SENDERS)))

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/email/send", WELCOME)
    assert response.status_code == 201, response.content
    [item] = response.json()["items"]

    [received] = smtp_backend.wait_for(1)
    assert received.rcpt_tos == ["john@techconnect.bj"]
    notification_id = received.message["X-Notification-Id"]
    assert notification_id == item["id"]

    history = api.get(f"/api/v1/email/messages/{item['id']}").json()
    assert history["status"] == Status.SENT

    class Arrived:  # what SES knows of the message: the headers the server received
        pk = notification_id
        address = received.rcpt_tos[0]
        subject = str(received.message["Subject"])

    payload = ses_delivery(Arrived)
    payload["mail"]["messageId"] = "010201-ses-own-id-not-ours-000000"
    with django_capture_on_commit_callbacks(execute=True):
        hook = post_sns(Client(), "/api/v1/email/webhook", signer.notification(payload))
    assert hook.status_code == 200, hook.content

    response = api.get(f"/api/v1/email/messages/{item['id']}")
    assert response.status_code == 200
    assert_matches_schema("GET", f"/api/v1/email/messages/{item['id']}", response)
    history = response.json()
    assert history["status"] == Status.DELIVERED
    assert history["delivered_at"] is not None
    assert [(e["event_type"], e["provider"], e["recipient"]) for e in history["events"]] == [
        ("delivered", "amazon_ses", "john@techconnect.bj")]
    assert "250 ok" in history["events"][0]["detail"]
    sns.forget_certificates()
