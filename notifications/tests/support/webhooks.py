"""Fixtures' helpers for the tracking webhook tests: sending through SES or SendGrid (anymail's
backends, their HTTP APIs answered by a local server), SES's documented notification shapes
built around a sent message, and a recorder of `delivery_event_recorded`."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

from notifications.signals import delivery_event_recorded
from notifications.tests.support.http import ESPServer, Reply

SECRET = "hook:s3cret"
NEXT_SECRET = "hook:n3xt-s3cret"
SES_MESSAGE_ID = "0102019a-test-ses-message-id-000000"


@contextlib.contextmanager
def ses_api(settings) -> Iterator[ESPServer]:
    """Mail goes through anymail's Amazon SES backend to a local stand-in for the SESv2 API
    (the message's provider key is then `amazon_ses`)."""
    server = ESPServer(Reply(status=200, body={"MessageId": SES_MESSAGE_ID})).start()
    settings.EMAIL_BACKEND = "anymail.backends.amazon_ses.EmailBackend"
    settings.ANYMAIL = {**(settings.ANYMAIL or {}), "AMAZON_SES_CLIENT_PARAMS": {
        "endpoint_url": server.url, "region_name": "eu-west-1",
        "aws_access_key_id": "AKIDTESTTESTTEST", "aws_secret_access_key": "test-secret",
        "config": {"retries": {"total_max_attempts": 1, "mode": "standard"}},
    }}
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def sendgrid_api(settings) -> Iterator[ESPServer]:
    """Mail goes through anymail's SendGrid backend to a local stand-in for its v3 API
    (provider key `sendgrid`)."""
    server = ESPServer(Reply(status=202, body=b"")).start()
    settings.EMAIL_BACKEND = "anymail.backends.sendgrid.EmailBackend"
    settings.ANYMAIL = {**(settings.ANYMAIL or {}), "SENDGRID_API_KEY": "SG.test-key",
                        "SENDGRID_API_URL": f"{server.url}/v3/"}
    try:
        yield server
    finally:
        server.stop()


def ses_mail(message, *, destination: list[str] | None = None, headers: bool = True) -> dict:
    """The `mail` object of an SES notification for `message`, shaped as in
    https://docs.aws.amazon.com/ses/latest/dg/notification-contents.html#mail-object
    (original headers included, as the identity's "Include original headers" does)."""
    destination = destination or [message.address]
    mail = {
        "timestamp": "2026-12-02T02:59:38.237Z",
        "messageId": "0000014644fe5ef6-9a483358-9170-4cb4-a269-f5dcdf415321-000000",
        "source": "noreply@rgz.bj",
        "sourceArn": "arn:aws:ses:eu-west-1:123456789012:identity/rgz.bj",
        "sourceIp": "127.0.3.0",
        "sendingAccountId": "123456789012",
        "destination": destination,
    }
    if headers:
        mail.update({
            "headersTruncated": False,
            "headers": [
                {"name": "From", "value": "RGZ Notifications <noreply@rgz.bj>"},
                {"name": "To", "value": ", ".join(destination)},
                {"name": "Subject", "value": message.subject},
                {"name": "X-Notification-Id", "value": str(message.pk)},
                {"name": "MIME-Version", "value": "1.0"},
            ],
            "commonHeaders": {"from": ["RGZ Notifications <noreply@rgz.bj>"], "to": destination,
                              "subject": message.subject},
        })
    return mail


def ses_delivery(message, *, recipients: list[str] | None = None, **mail) -> dict:
    """https://docs.aws.amazon.com/ses/latest/dg/notification-examples.html#notification-examples-delivery"""
    recipients = recipients or [message.address]
    return {
        "notificationType": "Delivery",
        "mail": ses_mail(message, destination=recipients, **mail),
        "delivery": {
            "timestamp": "2026-12-02T02:59:39.237Z",
            "processingTimeMillis": 546,
            "recipients": recipients,
            "smtpResponse": "250 ok:  Message 64111812 accepted",
            "reportingMTA": "a8-70.smtp-out.amazonses.com",
            "remoteMtaIp": "127.0.2.0",
        },
    }


def ses_bounce(message, *, bounce_type: str = "Permanent", subtype: str = "General",
               recipients: list[str] | None = None) -> dict:
    """https://docs.aws.amazon.com/ses/latest/dg/notification-examples.html#notification-examples-bounce
    (with a DSN; `Transient`/`MailboxFull` per the bounce types table of notification-contents)."""
    recipients = recipients or [message.address]
    status, code = ("5.1.1", "smtp; 550 5.1.1 user unknown") if bounce_type == "Permanent" else (
        "4.2.2", "smtp; 452 4.2.2 mailbox full")
    return {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": bounce_type,
            "reportingMTA": "dns; email.example.com",
            "bouncedRecipients": [
                {"emailAddress": address, "status": status, "action": "failed", "diagnosticCode": code}
                for address in recipients
            ],
            "bounceSubType": subtype,
            "timestamp": "2026-12-02T02:59:40.237Z",
            "feedbackId": "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa068a-000000",
            "remoteMtaIp": "127.0.2.0",
        },
        "mail": ses_mail(message, destination=recipients),
    }


def ses_complaint(message) -> dict:
    """https://docs.aws.amazon.com/ses/latest/dg/notification-examples.html#notification-examples-complaint"""
    return {
        "notificationType": "Complaint",
        "complaint": {
            "userAgent": "AnyCompany Feedback Loop (V0.01)",
            "complainedRecipients": [{"emailAddress": message.address}],
            "complaintFeedbackType": "abuse",
            "arrivalDate": "2026-12-02T02:59:41.237Z",
            "timestamp": "2026-12-02T02:59:41.237Z",
            "feedbackId": "000001378603177f-18c07c78-fa81-4a58-9dd1-fedc3cb8f49a-000000",
        },
        "mail": ses_mail(message),
    }


class RecordedEvents:
    """Collects `delivery_event_recorded` while connected."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def __call__(self, sender, **kwargs) -> None:
        self.calls.append(kwargs)

    def __enter__(self) -> RecordedEvents:
        delivery_event_recorded.connect(self, weak=False, dispatch_uid=id(self))
        return self

    def __exit__(self, *exc) -> None:
        delivery_event_recorded.disconnect(dispatch_uid=id(self))
