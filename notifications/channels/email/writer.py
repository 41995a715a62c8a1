"""The writer of every send: rows, prebuilt MIME and attachments in one transaction, a wake-up on commit.

A refused request never gets here (everything is checked and rendered before), and an
accepted one is never lost: the rows exist before any worker is asked to send them.
"""
from __future__ import annotations

from datetime import datetime
from email.utils import formataddr, formatdate

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from notifications.core.addresses import address_key
from notifications.channels.email.attachments import Attachment
from notifications.channels.email.backends import connections
from notifications.models import AttachmentBlob, EmailAttachment, Message, Status

from notifications.channels.email import delivery
from notifications.core.outbox import lifecycle
from notifications.channels.email import mime
from notifications.core.outbox import writer as outbox_writer
from notifications.policies import suppression
from notifications.channels.email.drafts import Draft


def default_from_email() -> str:
    return formataddr((settings.SMTP_FROM_NAME, settings.SMTP_FROM_EMAIL))


def prebuild(draft: Draft, messages: list[Message], *, attachments: list[Attachment], date: str) -> None:
    """Store each row's RFC 5322 bytes (`Message.mime`): the body built once per draft.

    A masked draft gets none: its bytes would hold the secret the audit masks, so it is built
    at delivery from the sealed rendering, as before. Nor does a draft whose attachments
    pass `EMAIL_PREBUILD_MAX_ATTACHMENT_BYTES` (every row would hold its own base64 copy,
    while the bytes live once in `AttachmentBlob`; encoding them is fast anyway), nor any
    draft when `EMAIL_BACKEND` does not send prebuilt bytes (ESPs, console, the database
    SMTP servers). `date` is when the message was complete and ready to enter the mail
    system (RFC 5322 3.6.1): the enqueue.
    """
    if draft.fields.get("is_masked") or not messages:
        return
    if sum(item.size for item in attachments) > settings.EMAIL_PREBUILD_MAX_ATTACHMENT_BYTES:
        return
    if not connections.configured_backend_sends_bytes():
        return

    def headers(message: Message) -> dict[str, str]:
        return {"To": message.address, "Date": date, **delivery.message_headers(message)}

    first = messages[0]
    template = mime.MimeTemplate.of(mime.django_email(
        subject=draft.rendered.subject, html=draft.rendered.html, text=draft.rendered.text,
        from_email=first.from_email, to=[first.address], cc=first.cc, bcc=first.bcc,
        reply_to=first.reply_to, headers=headers(first),
        attachments=[(item.filename, item.content, item.content_type) for item in attachments],
    ))
    for message in messages:
        message.mime = template.for_recipient(headers(message))


@transaction.atomic
def write_and_queue(
    drafts: list[Draft], *, attachments: list[Attachment], send_at: datetime | None
) -> list[list[Message]]:
    """Write every draft's rows and attachments in one transaction; wake their lanes on commit.

    The status they are written with comes from the state machine (`lifecycle`): a suppressed
    address's row is written `suppressed`, with the reason (one query for the whole send).
    Returns the messages of each draft, in order.
    """
    now = timezone.now()
    initial = lifecycle.initial_fields(send_at=send_at, now=now)
    suppressed = suppression.reasons_at_send([(draft.recipients, draft.marketing) for draft in drafts]) \
        if initial["status"] != Status.SUPPRESSED else [{} for _ in drafts]

    def fields_for(index: int, address: str) -> dict:
        because = suppressed[index].get(address_key(address))
        return lifecycle.initial_fields(send_at=send_at, now=now, suppressed_because=because) if because else initial

    per_draft = [
        [
            Message(
                address=address,
                from_email=default_from_email(),
                subject=draft.rendered.subject,
                html_content=draft.rendered.html,
                text_content=draft.rendered.text,
                attachments_count=len(attachments),
                **fields_for(index, address),
                **draft.fields,
            )
            for address in draft.recipients
        ]
        for index, draft in enumerate(drafts)
    ]
    date = formatdate(localtime=settings.EMAIL_USE_LOCALTIME)
    for draft, group in zip(drafts, per_draft, strict=True):
        prebuild(draft, group, attachments=attachments, date=date)
    messages = [message for group in per_draft for message in group]
    # One copy of each content, shared by every recipient (and by earlier messages); the
    # three inserts in one round trip where the database allows it (raw_sql.insert_together),
    # by the outbox's one writer, which wakes the lanes on commit.
    outbox_writer.write_messages(
        messages,
        ([AttachmentBlob(sha256=item.sha256, size_bytes=item.size, data=item.content) for item in attachments], True),
        ([
            EmailAttachment(
                message=message,
                filename=item.filename,
                content_type=item.content_type,
                size_bytes=item.size,
                blob_id=item.sha256,
            )
            for message in messages
            for item in attachments
        ], False),
    )
    return per_draft
