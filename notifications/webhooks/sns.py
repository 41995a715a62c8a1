"""Amazon SNS message verification, which anymail 15.2 does not do.

A message is accepted only when its topic is one of `EMAIL_SES_SNS_TOPIC_ARNS` and its
signature (version 1: SHA1withRSA, 2: SHA256withRSA) verifies against the signing
certificate named by `SigningCertURL`. That URL must be HTTPS on an
`sns.<region>.amazonaws.com` host; the certificate is read from a file when
`EMAIL_SNS_SIGNING_CERTS` lists the URL (tests, air-gapped set-ups), else fetched once and
kept for the process. See
https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html
"""
from __future__ import annotations

import base64
import binascii
import re
import threading
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from django.conf import settings
from django.utils.translation import gettext as _

from notifications.exceptions import NotificationError

SIGNED_KEYS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}
HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}
CERT_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
MAX_CERT_BYTES = 64 * 1024
FETCH_TIMEOUT_SECONDS = 10

_certificates: dict[str, x509.Certificate] = {}
_lock = threading.Lock()


class SNSVerificationError(NotificationError):
    """The message is not a verified SNS message from an allowed topic."""

    status_code = 403


class CertificateUnavailable(NotificationError):
    """The signing certificate could not be fetched now: SNS will retry."""

    status_code = 503
    field = "SigningCertURL"


def verify(message: dict) -> None:
    """Raise `SNSVerificationError` unless `message` is signed by SNS for an allowed topic."""
    if not isinstance(message, dict):
        raise SNSVerificationError(_("The body is not an SNS message."))
    kind = message.get("Type")
    if kind not in SIGNED_KEYS:
        raise SNSVerificationError(_("Unknown SNS message type %(type)r.") % {"type": kind}, field="Type")
    topic = message.get("TopicArn")
    if topic not in allowed_topics():
        raise SNSVerificationError(
            _("SNS topic %(topic)r is not one of EMAIL_SES_SNS_TOPIC_ARNS.") % {"topic": topic}, field="TopicArn"
        )
    algorithm = HASHES.get(str(message.get("SignatureVersion")))
    if algorithm is None:
        raise SNSVerificationError(_("SignatureVersion must be 1 or 2."), field="SignatureVersion")
    try:
        signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SNSVerificationError(_("Signature is not base64."), field="Signature") from exc
    certificate = signing_certificate(str(message.get("SigningCertURL", "")))
    try:
        certificate.public_key().verify(signature, string_to_sign(message), padding.PKCS1v15(), algorithm())
    except (InvalidSignature, TypeError, ValueError) as exc:
        raise SNSVerificationError(_("The SNS signature does not verify."), field="Signature") from exc


def string_to_sign(message: dict) -> bytes:
    """The canonical text SNS signs: `Key\\nValue\\n` for each signed key present, in order."""
    lines = []
    for key in SIGNED_KEYS[message["Type"]]:
        if key in message and message[key] is not None:
            lines += [key, str(message[key])]
    return ("\n".join(lines) + "\n").encode()


def allowed_topics() -> set[str]:
    return {topic for topic in settings.EMAIL_SES_SNS_TOPIC_ARNS if topic}


def signing_certificate(url: str) -> x509.Certificate:
    """The certificate at `url`, which must be HTTPS on an SNS host: from a listed file, the
    process's cache, or fetched once."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not CERT_HOST.match(parts.hostname or "") or parts.port not in (None, 443):
        raise SNSVerificationError(
            _("SigningCertURL must be an https://sns.<region>.amazonaws.com/ address."), field="SigningCertURL"
        )
    with _lock:
        cached = _certificates.get(url)
    if cached is None:
        cached = _load(url)
        with _lock:
            _certificates[url] = cached
    now = datetime.now(UTC)
    if not cached.not_valid_before_utc <= now <= cached.not_valid_after_utc:
        raise SNSVerificationError(_("The SNS signing certificate is not valid now."), field="SigningCertURL")
    return cached


def listed_certificates() -> dict[str, str]:
    """`EMAIL_SNS_SIGNING_CERTS` as {url: path}."""
    pairs = {}
    for item in settings.EMAIL_SNS_SIGNING_CERTS:
        url, _sep, path = item.partition("=")
        if url.strip() and path.strip():
            pairs[url.strip()] = path.strip()
    return pairs


def _load(url: str) -> x509.Certificate:
    path = listed_certificates().get(url)
    try:
        if path is not None:
            data = Path(path).read_bytes()
        else:
            with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_SECONDS) as response:  # noqa: S310 - https checked
                data = response.read(MAX_CERT_BYTES + 1)
            if len(data) > MAX_CERT_BYTES:
                raise ValueError("certificate too large")
    except (OSError, ValueError) as exc:
        raise CertificateUnavailable(
            _("The SNS signing certificate could not be read: %(error)s") % {"error": exc}
        ) from exc
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise SNSVerificationError(_("SigningCertURL does not hold a PEM certificate."), field="SigningCertURL") from exc


def forget_certificates() -> None:
    """Drop the cached certificates (tests, and a settings change)."""
    with _lock:
        _certificates.clear()
