"""Inbound email: what anymail's inbound webhooks received, stored, then announced.

The mail is stored first, in one transaction, and `signals.email_received` is sent once
that commits, robustly: a receiver that raises is logged, the others still run, and the
stored mail is kept (the provider is answered 200, so it does not post it again).
Everything received is untrusted: text that PostgreSQL cannot store (NUL) is dropped, and
the HTML is only ever shown in a sandboxed frame (admin).
"""
from __future__ import annotations

import hashlib
import logging

from django.db import transaction
from django.utils import timezone

from notifications.models import AttachmentBlob, InboundAttachment, InboundEmail
from notifications import signals
from notifications.signals import email_received

logger = logging.getLogger(__name__)


def _clean(value) -> str:
    """A received string as it can be stored: str, without NUL characters."""
    return "" if value is None else str(value).replace("\x00", "")


def _limited(value, field: str) -> str:
    limit = InboundEmail._meta.get_field(field).max_length
    return _clean(value)[:limit]


def receive(*, event, provider: str) -> InboundEmail:
    """Store anymail's `AnymailInboundEvent` and send `email_received` after commit."""
    email = store(event=event, provider=provider)
    transaction.on_commit(lambda: announce(email))
    return email


@transaction.atomic
def store(*, event, provider: str) -> InboundEmail:
    message = event.message
    sender = message.from_email
    if isinstance(sender, list):  # several From addresses (legal, unusual)
        sender = ", ".join(str(address) for address in sender)
    raw_size = getattr(event, "raw_size", None)  # measured by the inbound route against its cap
    if raw_size is None:
        try:
            raw_size = len(message.as_bytes())
        except Exception:  # noqa: BLE001 - a malformed part the serializer refuses: keep the mail, size unknown
            logger.warning("An inbound email from %s could not be serialised to measure it; raw_size 0.", sender)
            raw_size = 0
    email = InboundEmail.objects.create(
        provider=_limited(provider, "provider"),
        provider_message_id=_limited(event.event_id or message["Message-ID"] or "", "provider_message_id"),
        from_email=_clean(sender),
        envelope_sender=_limited(message.envelope_sender, "envelope_sender"),
        envelope_recipient=_limited(message.envelope_recipient, "envelope_recipient"),
        to=[_clean(address) for address in message.to],
        cc=[_clean(address) for address in message.cc],
        subject=_clean(message.subject),
        text=_clean(message.text),
        html=_clean(message.html),
        headers=[[_clean(name), _clean(value)] for name, value in message.items()],
        spam_score=message.spam_score,
        spam_detected=message.spam_detected,
        raw_size=raw_size,
        received_at=event.timestamp or timezone.now(),
    )
    # Attachments, and inline parts that are files (an image the HTML shows by Content-ID),
    # not an inline body part.
    parts = [part for part in message.walk() if not part.is_multipart() and (
        part.is_attachment() or (part.is_inline() and (part["Content-ID"] or part.get_filename())))]
    blobs, attachments = {}, []
    for part in parts:
        content = part.get_content_bytes() or b""
        digest = hashlib.sha256(content).hexdigest()
        blobs[digest] = AttachmentBlob(sha256=digest, size_bytes=len(content), data=content)
        attachments.append(InboundAttachment(
            email=email,
            filename=_clean(part.get_filename())[:255],
            content_type=_clean(part.get_content_type())[:255],
            content_id=_clean(part["Content-ID"]).strip("<>")[:255],
            size_bytes=len(content),
            blob_id=digest,
        ))
    if attachments:
        # The same bytes as an earlier message's (inbound or outbound) are stored once.
        AttachmentBlob.objects.bulk_create(list(blobs.values()), ignore_conflicts=True)
        InboundAttachment.objects.bulk_create(attachments)
    logger.info("Inbound email %s from %s stored (%s, %d bytes, %d attachments).",
                email.pk, email.from_email, provider, email.raw_size, len(attachments))
    return email


def announce(email: InboundEmail) -> None:
    """`email_received` to every receiver; one that raises is logged and the next still runs."""
    signals.announce(email_received, sender=InboundEmail, about=f"for inbound email {email.pk}; the mail is stored",
                     email=email)


__all__ = ["announce", "receive", "store"]
