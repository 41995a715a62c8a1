"""Amazon SNS messages signed as SNS signs them, with a throwaway key and certificate.

`SNSSigner(directory)` writes its certificate to a file; `settings.EMAIL_SNS_SIGNING_CERTS`
maps `CERT_URL` (an address on an SNS host, as real ones are) to that file, so the webhook
verifies the signature offline. Message formats follow
https://docs.aws.amazon.com/sns/latest/dg/http-notification-json.html and
https://docs.aws.amazon.com/sns/latest/dg/http-subscription-confirmation-json.html
"""
from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from notifications.channels.email.webhooks.sns import string_to_sign

REGION = "eu-west-1"
TOPIC_ARN = f"arn:aws:sns:{REGION}:123456789012:ses-events"
OTHER_TOPIC_ARN = f"arn:aws:sns:{REGION}:999999999999:someone-elses-topic"
CERT_URL = f"https://sns.{REGION}.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem"


@contextlib.contextmanager
def signing(settings, directory: Path, *, topics: Sequence[str] = (TOPIC_ARN,),
            secrets: Sequence[str] | None = None) -> Iterator[SNSSigner]:
    """A signer whose certificate the webhooks read from a file, for messages of `topics`;
    with `secrets`, the webhooks' basic-auth secrets too. Fetched certificates are forgotten
    before and after."""
    from notifications.channels.email.webhooks import sns

    signer = SNSSigner(directory)
    if secrets is not None:
        settings.ANYMAIL = {**(settings.ANYMAIL or {}), "WEBHOOK_SECRET": list(secrets)}
    settings.EMAIL_SES_SNS_TOPIC_ARNS = list(topics)
    settings.EMAIL_SNS_SIGNING_CERTS = [f"{CERT_URL}={signer.cert_path}"]
    sns.forget_certificates()
    try:
        yield signer
    finally:
        sns.forget_certificates()


class SNSSigner:
    def __init__(self, directory: Path) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
        now = dt.datetime.now(dt.UTC)
        certificate = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
            .sign(self.key, hashes.SHA256())
        )
        self.cert_path = directory / "sns-signing.pem"
        self.cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))

    def sign(self, message: dict, *, version: int = 2, cert_url: str = CERT_URL) -> dict:
        message = {**message, "SignatureVersion": str(version), "SigningCertURL": cert_url}
        algorithm = hashes.SHA256() if version == 2 else hashes.SHA1()
        signature = self.key.sign(string_to_sign(message), padding.PKCS1v15(), algorithm)
        return {**message, "Signature": base64.b64encode(signature).decode()}

    def notification(self, ses_event: dict | str, *, topic: str = TOPIC_ARN, message_id: str | None = None,
                     version: int = 2) -> dict:
        """An SNS Notification carrying `ses_event` (JSON-encoded as SNS does)."""
        return self.sign({
            "Type": "Notification",
            "MessageId": message_id or str(uuid.uuid4()),
            "TopicArn": topic,
            "Message": ses_event if isinstance(ses_event, str) else json.dumps(ses_event),
            "Timestamp": "2026-12-02T03:00:00.000Z",
            "UnsubscribeURL": f"https://sns.{REGION}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={topic}:1",
        }, version=version)

    def subscription_confirmation(self, *, topic: str = TOPIC_ARN, token: str = "2336412f37fb687f5d51e6e2425c464de") -> dict:
        return self.sign({
            "Type": "SubscriptionConfirmation",
            "MessageId": str(uuid.uuid4()),
            "Token": token,
            "TopicArn": topic,
            "Message": f"You have chosen to subscribe to the topic {topic}.\nTo confirm the subscription, "
                       "visit the SubscribeURL included in this message.",
            "SubscribeURL": f"https://sns.{REGION}.amazonaws.com/?Action=ConfirmSubscription&TopicArn={topic}"
                            f"&Token={token}",
            "Timestamp": "2026-12-02T03:00:00.000Z",
        })


def basic_auth(secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(secret.encode()).decode()}


def post_sns(client, path: str, message: dict, *, auth: str | None = "hook:s3cret", headers: dict | None = None):
    """POST an SNS message as SNS does: JSON body (text/plain), its type and id in headers."""
    sent_headers = {"x-amz-sns-message-type": message.get("Type", ""), "x-amz-sns-message-id": message.get("MessageId", ""),
                    **(basic_auth(auth) if auth else {}), **(headers or {})}
    return client.post(path, data=json.dumps(message), content_type="text/plain; charset=UTF-8", headers=sent_headers)
