"""Hand one claimed message to the configured email backend.

The message is built from the stored rendering, never re-rendered, or is the bytes built at
enqueue when the backend sends bytes as they are (`channels.email.mime`). It is sent through the
process's kept-open backend (`notifications.channels.email.backends.connections`), so a worker reuses one
connection per server: the channel's provider (`channels.email.provider`) sends it. Claiming,
and recording what came of it, belong to the drain (`core.outbox.drain`) and the state
machine (`core.outbox.lifecycle`).
"""
from __future__ import annotations

import functools
from email.utils import parseaddr

from django.core.mail import EmailMultiAlternatives

from notifications.channels.email.backends.connections import sends_message_bytes
from notifications.models import Message
from notifications.channels.email.mime import PrebuiltEmail, django_email
from notifications.channels.email.sealing import content_to_send


def message_id_header(message: Message) -> str:
    """Our own Message-ID, derived from the row's id, so replies and bounces map back to it."""
    return f"<{message.pk.hex}@{_domain(message.from_email)}>"


@functools.lru_cache(maxsize=256)
def _domain(from_email: str) -> str:
    # Parsing an address costs a delivery more than building the header; the From is
    # nearly always the same few addresses.
    return parseaddr(from_email)[1].rpartition("@")[2] or "localhost"


def build_email(message: Message, *, connection=None) -> EmailMultiAlternatives:
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
        subject=subject, html=html, text=text, from_email=message.from_email, to=[message.address],
        cc=message.cc, bcc=message.bcc, reply_to=message.reply_to, headers=message_headers(message),
        attachments=attachments, connection=connection,
    )
    # anymail sends these as the ESP's metadata, so webhook events can be matched back.
    email.metadata = {"notification_id": str(message.pk)}
    return email


def message_headers(message: Message) -> dict[str, str]:
    """The headers of ours every message carries; its Message-ID maps replies back to it."""
    return {"Message-ID": message_id_header(message), "X-Notification-Id": str(message.pk)}


def prebuilt_email(message: Message) -> PrebuiltEmail:
    """The email of a message whose bytes were built at enqueue (`Message.mime`)."""
    return PrebuiltEmail(
        message.mime, from_email=message.from_email, to=[message.address], cc=message.cc,
        bcc=message.bcc, reply_to=message.reply_to, headers=message_headers(message),
    )


def email_to_send(message: Message) -> EmailMultiAlternatives:
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


__all__ = [
    "build_email", "email_to_send", "message_headers", "message_id_header", "prebuilt_email", "provider_message_id",
]
