"""Deliver one queued message through the configured email backend.

The claim (`services.claims`) is a conditional UPDATE from `queued` to `sending` that
returns the row: whichever worker (or redelivered task) wins it is the only one that sends,
on any database and any number of workers. The message is built from the
stored rendering, never re-rendered, or is the bytes built at enqueue when the backend sends
bytes as they are (`services.mime`). It is sent through the process's kept-open backend
(`notifications.backends.connections`), so a worker reuses one connection per server.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parseaddr

from django.core.mail import EmailMultiAlternatives
from django.db import connection
from django.db.models.expressions import RawSQL
from django.utils import timezone

from notifications.backends.connections import send_email, sends_message_bytes
from notifications.backends.errors import classify_delivery_error
from notifications.models import EmailMessage, Status
from notifications.services.claims import claim
from notifications.services.mime import PrebuiltEmail, django_email
from notifications.services.sealing import content_to_send

logger = logging.getLogger(__name__)

SKIPPED, SENT, FAILED = "skipped", "sent", "failed"


def message_id_header(message: EmailMessage) -> str:
    """Our own Message-ID, derived from the row's id, so replies and bounces map back to it."""
    domain = parseaddr(message.from_email)[1].rpartition("@")[2] or "localhost"
    return f"<{message.pk.hex}@{domain}>"


def build_email(message: EmailMessage, *, connection=None) -> EmailMultiAlternatives:
    """The Django email for a stored message: text body, HTML alternative, attachments.

    A message with sensitive variables is sent from its sealed, unmasked rendering.
    """
    subject, html, text = content_to_send(message)
    attachments = []
    if message.attachments_count:
        attachments = [
            (attachment.filename, bytes(attachment.blob.data), attachment.content_type)
            for attachment in message.attachments.select_related("blob")
        ]
    email = django_email(
        subject=subject, html=html, text=text, from_email=message.from_email, to=[message.recipient_email],
        cc=message.cc, bcc=message.bcc, reply_to=message.reply_to, headers=message_headers(message),
        attachments=attachments, connection=connection,
    )
    # anymail sends these as the ESP's metadata, so webhook events can be matched back.
    email.metadata = {"notification_id": str(message.pk)}
    return email


def message_headers(message: EmailMessage) -> dict[str, str]:
    """The headers of ours every message carries; its Message-ID maps replies back to it."""
    return {"Message-ID": message_id_header(message), "X-Notification-Id": str(message.pk)}


def prebuilt_email(message: EmailMessage) -> PrebuiltEmail:
    """The email of a message whose bytes were built at enqueue (`EmailMessage.mime`)."""
    return PrebuiltEmail(
        message.mime, from_email=message.from_email, to=[message.recipient_email], cc=message.cc,
        bcc=message.bcc, reply_to=message.reply_to, headers=message_headers(message),
    )


def email_to_send(message: EmailMessage) -> EmailMultiAlternatives:
    """The stored bytes when the backend sends bytes as they are, else a freshly built email.

    ESP backends need the parts, `DatabaseSMTPBackend` may change the From, and the console,
    file and locmem backends read the built message; rows queued before `mime` existed, and
    masked ones (their bytes are never stored), have no bytes.
    """
    if message.mime and sends_message_bytes():
        return prebuilt_email(message)
    return build_email(message)


def provider_message_id(email: EmailMultiAlternatives) -> str:
    status = getattr(email, "anymail_status", None)
    if status is not None and status.message_id:
        return str(status.message_id)
    return email.extra_headers.get("Message-ID", "")


def deliver(message_id) -> str:
    """Claim, send and record one message. Returns SENT, FAILED or SKIPPED."""
    message = claim(message_id)
    if message is None:
        logger.info("Message %s is not queued (already claimed or finished); skipping.", message_id)
        return SKIPPED
    outcome = send_claimed(message)
    if isinstance(outcome, Sent):
        record_sent([outcome])
        return SENT
    return outcome


@dataclass(frozen=True)
class Sent:
    """What the backend handed back for one sent message, until the row records it."""

    message_id: object
    provider_message_id: str
    sent_via: str
    from_email: str
    sent_at: datetime = field(default_factory=timezone.now)

    def fields(self) -> dict:
        """The columns a `sending` row takes once the backend accepted the message."""
        return {
            "status": Status.SENT, "sent_at": self.sent_at, "provider_message_id": self.provider_message_id,
            "sent_via": self.sent_via,
            "from_email": self.from_email,  # a database SMTP server may send under its own address
            "error_message": "", "sealed_content": "", "updated_at": timezone.now(),
        }


def send_claimed(message: EmailMessage) -> Sent | str:
    """Send a message this worker has claimed: `Sent` for the caller to record, or the final
    status of a test message (simulated) or of a failure (recorded here)."""
    if message.is_test:
        from notifications.services.simulator import simulate

        simulate(message)
        return SENT
    try:
        email = email_to_send(message)
        sent_via = send_email(email)
    except Exception as exc:  # noqa: BLE001 - every backend error is recorded on the row
        return handle_delivery_error(message, exc)
    return Sent(message.pk, provider_message_id(email)[:255], sent_via[:100], email.from_email)


def record_sent(outcomes: Sequence[Sent]) -> None:
    """Mark every message of `outcomes` sent, with its own provider id, server and time, in one UPDATE.

    Like a single delivery, only a row still `sending` moves: the guard keeps a late write
    from taking a row back from a status it has since reached.
    """
    if not outcomes:
        return
    if len(outcomes) == 1:
        (outcome,) = outcomes
        EmailMessage.objects.filter(pk=outcome.message_id, status=Status.SENDING).update(**outcome.fields())
        return

    fields = outcomes[0].fields()
    fields.update({name: per_row(outcomes, name) for name in PER_ROW})
    EmailMessage.objects.filter(pk__in=[outcome.message_id for outcome in outcomes], status=Status.SENDING).update(
        **fields
    )


PER_ROW = ("sent_at", "provider_message_id", "sent_via", "from_email")


def per_row(outcomes: Sequence[Sent], name: str) -> RawSQL:
    """`CASE id WHEN … THEN … END`: each row's own value of column `name`, for one UPDATE.

    Written as SQL with parameters rather than `Case(When(pk=…))`: building and resolving
    fifty `When` filters per column cost more than the UPDATE itself.
    """
    meta = EmailMessage._meta
    target = meta.get_field(name)
    params: list = []
    for outcome in outcomes:
        params += [meta.pk.get_db_prep_value(outcome.message_id, connection),
                   target.get_db_prep_value(getattr(outcome, name), connection)]
    whens = " ".join(["WHEN %s THEN %s"] * len(outcomes))
    return RawSQL(f"CASE {connection.ops.quote_name(meta.pk.column)} {whens} END", params, output_field=target)


def handle_delivery_error(message: EmailMessage, exc: Exception) -> str:
    """The one place a delivery error is decided.

    The error is classified (`classify_delivery_error`) and stored as "permanent: ..." or
    "transient: ...". Today both fail the message; the retry policy (transient errors
    re-queued with backoff until `max_attempts`) belongs here and nowhere else.
    """
    classified = classify_delivery_error(exc)
    error = str(classified)[:2000]
    logger.warning("Delivery of message %s failed: %s", message.pk, error)
    EmailMessage.objects.filter(pk=message.pk, status=Status.SENDING).update(
        status=Status.FAILED, error_message=error, sealed_content="", updated_at=timezone.now()
    )
    return FAILED


__all__ = [
    "Sent", "build_email", "deliver", "record_sent", "send_claimed", "email_to_send", "handle_delivery_error", "message_headers",
    "message_id_header", "prebuilt_email",
]
