"""Amazon SNS message verification, which anymail 15.2 does not do.

A message is accepted only when its topic is one of `EMAIL_SES_SNS_TOPIC_ARNS` and its
signature (version 1: SHA1withRSA, 2: SHA256withRSA) verifies against the signing
certificate named by `SigningCertURL`. That URL must be HTTPS on an
`sns.<region>.amazonaws.com` host; the certificate is read from a file when
`EMAIL_SNS_SIGNING_CERTS` lists the URL (tests, air-gapped set-ups), else fetched once and
kept for the process: at most `MAX_CACHED_CERTIFICATES` of them (SNS signs with one per
region at a time), the least recently used dropped first. A fetch that failed is
remembered for `FAILED_FETCH_SECONDS`: meanwhile the webhook answers 503 at once (SNS
retries) instead of waiting out the timeout on every request. See
https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html

A verified `SubscriptionConfirmation` is confirmed as SNS documents it, with a GET of its
`SubscribeURL` (which must be an SNS address of the topic's own region, naming the topic
and the token of the message): no AWS credentials needed. `AWS_ENDPOINT_URL_SNS`, when set,
receives that GET instead of the SNS host (as it replaces boto3's SNS endpoint). See
https://docs.aws.amazon.com/sns/latest/dg/SendMessageToHttp.prepare.html
"""
from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import threading
import time
import urllib.request
from collections import OrderedDict
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit

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
MAX_CACHED_CERTIFICATES = 32
FAILED_FETCH_SECONDS = 60
MAX_CONFIRMATION_BYTES = 64 * 1024

logger = logging.getLogger(__name__)

_certificates: OrderedDict[str, x509.Certificate] = OrderedDict()
_failed: OrderedDict[str, float] = OrderedDict()  # url -> monotonic time until which it is not fetched again
_lock = threading.Lock()


class SNSVerificationError(NotificationError):
    """The message is not a verified SNS message from an allowed topic."""

    status_code = 403
    code = "sns_not_verified"


class CertificateUnavailable(NotificationError):
    """The signing certificate could not be fetched now: SNS will retry."""

    status_code = 503
    field = "SigningCertURL"
    code = "sns_certificate_unavailable"


class ConfirmationFailed(NotificationError):
    """SNS did not take the subscription's confirmation now: SNS will send it again."""

    status_code = 503
    field = "SubscribeURL"
    code = "sns_confirmation_failed"


def verify(message: dict) -> None:
    """Raise `SNSVerificationError` unless `message` is signed by SNS for an allowed topic."""
    if not isinstance(message, dict):
        raise SNSVerificationError(_("The body is not an SNS message."))
    kind = message.get("Type")
    if not isinstance(kind, str) or kind not in SIGNED_KEYS:
        raise SNSVerificationError(_("Unknown SNS message type %(type)r.") % {"type": str(kind)[:100]}, field="Type")
    topic = message.get("TopicArn")
    if not isinstance(topic, str) or topic not in allowed_topics():
        raise SNSVerificationError(
            _("SNS topic %(topic)r is not one of EMAIL_SES_SNS_TOPIC_ARNS.") % {"topic": str(topic)[:300]},
            field="TopicArn",
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
        if cached is not None:
            _certificates.move_to_end(url)
        failed_until = _failed.get(url, 0.0)
    if cached is None:
        if failed_until > time.monotonic():
            raise CertificateUnavailable(_unavailable())
        try:
            cached = _load(url)
        except CertificateUnavailable:
            with _lock:
                _failed[url] = time.monotonic() + FAILED_FETCH_SECONDS
                _failed.move_to_end(url)
                while len(_failed) > MAX_CACHED_CERTIFICATES:
                    _failed.popitem(last=False)
            raise
        with _lock:
            _failed.pop(url, None)
            _certificates[url] = cached
            _certificates.move_to_end(url)
            while len(_certificates) > MAX_CACHED_CERTIFICATES:
                _certificates.popitem(last=False)
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
        logger.warning("The SNS signing certificate %s could not be read: %s", url, exc)
        raise CertificateUnavailable(_unavailable()) from exc
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise SNSVerificationError(_("SigningCertURL does not hold a PEM certificate."), field="SigningCertURL") from exc


def _unavailable() -> str:
    return _("The SNS signing certificate could not be fetched now; SNS will send the message again.")


def cached_certificate_urls() -> list[str]:
    """The URLs whose certificates are kept, least recently used first."""
    with _lock:
        return list(_certificates)


def forget_certificates() -> None:
    """Drop the cached certificates and remembered failures (tests, and a settings change)."""
    with _lock:
        _certificates.clear()
        _failed.clear()


def confirm_subscription(message: dict) -> None:
    """Confirm a verified `SubscriptionConfirmation` with a GET of its `SubscribeURL`.

    The URL must be HTTPS on an SNS host of the topic's own region, with
    `Action=ConfirmSubscription` and the message's own topic and token: a signed message
    from an allowed topic cannot send us anywhere else. Raises `SNSVerificationError` for a
    URL that breaks those rules, `ConfirmationFailed` when SNS cannot be reached.
    """
    url = str(message.get("SubscribeURL") or "")
    parts = urlsplit(url)
    topic = str(message.get("TopicArn") or "")
    region = topic.split(":")[3] if topic.count(":") >= 5 else ""
    query = parse_qs(parts.query)
    host_ok = (parts.scheme == "https" and CERT_HOST.match(parts.hostname or "") and parts.port in (None, 443)
               and (parts.hostname or "").split(".")[1:2] == [region])
    if not host_ok or query.get("Action") != ["ConfirmSubscription"] or query.get("TopicArn") != [topic] \
            or query.get("Token") != [str(message.get("Token") or "")]:
        raise SNSVerificationError(
            _("SubscribeURL must be an https://sns.<region>.amazonaws.com/ address of the topic's region "
              "confirming this topic with this token."), field="SubscribeURL")
    endpoint = os.environ.get("AWS_ENDPOINT_URL_SNS", "").strip()
    target = url
    if endpoint:
        base = urlsplit(endpoint)
        target = urlunsplit((base.scheme, base.netloc, parts.path or "/", parts.query, ""))
    try:
        with urllib.request.urlopen(target, timeout=FETCH_TIMEOUT_SECONDS) as response:  # noqa: S310 - checked above
            response.read(MAX_CONFIRMATION_BYTES)
            status = response.status
    except (OSError, ValueError) as exc:
        logger.warning("The SNS subscription to %s could not be confirmed: %s", topic, exc)
        raise ConfirmationFailed(_("SNS could not be reached to confirm the subscription; "
                                   "SNS will send the confirmation again.")) from exc
    if status != 200:
        logger.warning("SNS answered %s to the confirmation of the subscription to %s.", status, topic)
        raise ConfirmationFailed(_("SNS could not be reached to confirm the subscription; "
                                   "SNS will send the confirmation again."))
    logger.info("Subscription to SNS topic %s confirmed.", topic)
