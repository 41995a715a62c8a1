"""What people do to a message after it was written: cancel it, resend it, retry it.

Each action goes through the state machine (`core.outbox.lifecycle`) and turns a transition
that did not apply into an error that says why, for the API and the admin alike. A resend
or a retry wakes the message's lane once its transaction commits, so a worker takes it at
once instead of at the next sweep.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from notifications.core.addresses import address_key
from notifications.exceptions import InvalidTransition, SealedContentGone
from notifications.models import EmailAttachment, Message, EmailTemplate, Kind, Status

from notifications.core import channels
from notifications.core.outbox import lifecycle
from notifications.policies import suppression
from notifications.core.outbox import wakeups

#: `source_endpoint` of a message resent by staff in the admin.
RESEND_ENDPOINT = "admin-resend"

#: What a resend copies from the original: its rendering (never rendered again, so the new
#: message says exactly what the first one said), its addresses and its options.
COPIED = (
    "template_key", "template_version_id", "language", "address", "from_email", "reply_to", "cc", "bcc",
    "subject", "html_content", "text_content", "variables", "is_masked", "sealed_content", "attachments_count",
    "lane", "is_test",
)

#: The prefix of a resend's `idempotency_key`: `resend:<token of its confirmation>`.
RESEND_KEY_PREFIX = "resend:"

#: Still on its way: a resend would send it twice, a retry has nothing to retry.
NOT_LEFT = (Status.SCHEDULED, Status.QUEUED, Status.SENDING)


def status_label(status: str) -> str:
    """A status inside a sentence: its translated label ("annulé"), never its code ("cancelled")."""
    try:
        return str(Status(status).label).lower()
    except ValueError:
        return status


def cancel_message(*, message: Message) -> Message:
    """Cancel a scheduled or queued message; it is never sent. Returns the row as it is now.

    Raises `InvalidTransition` (409) naming the status it is in otherwise: a message a
    worker has claimed, or that has left, can no longer be held back.
    """
    transition = lifecycle.cancel(message.pk)
    message.refresh_from_db()
    if not transition:
        raise InvalidTransition(
            _("This message is %(status)s: only %(scheduled)s or %(queued)s messages can be cancelled.")
            % {"status": status_label(transition.status or message.status),
               "scheduled": status_label(Status.SCHEDULED), "queued": status_label(Status.QUEUED)}
        )
    return message


def resend_refusal(message: Message) -> str:
    """Why `message` cannot be resent now, or "" when it can (the admin hides the button)."""
    if message.status in NOT_LEFT:
        return _("This message is %(status)s: it has not left yet, so there is nothing to resend.") % {
            "status": status_label(message.status)}
    return channels.for_row(message).content_unavailable(message)


def retry_refusal(message: Message) -> str:
    """Why `message` cannot be retried, or "" when it can."""
    if message.status not in lifecycle.FINISHED_BADLY:
        return _("This message is %(status)s: only %(failed)s or %(expired)s messages can be retried.") % {
            "status": status_label(message.status), "failed": status_label(Status.FAILED),
            "expired": status_label(Status.EXPIRED)}
    return channels.for_row(message).content_unavailable(message)


@transaction.atomic
def resend_message(*, message: Message, requested_by, token: str = "") -> Message:
    """Queue a new message copying `message`'s rendering, addresses and attachments.

    The new row has its own id (so its own Message-ID; its bytes are built at delivery),
    `resent_from` = the original, `sent_by` = `requested_by` and `source_endpoint`
    `admin-resend`. Its status comes from the state machine like any send's: `queued`, or
    `suppressed` with the reason when the address is on the suppression list (or sending is
    disabled). Raises `InvalidTransition` (409) for a message that has not left yet, and
    `SealedContentGone` (409) for a masked one whose unmasked content was deleted.

    `token` is the one-time value of the confirmation the resend comes from: a second
    resend of the same original with the same token (a double click, a reload that posts
    again, two tabs) returns the copy the first one made instead of queuing another. The
    original's row is locked meanwhile, so two such requests at once make one copy too.
    """
    original = Message.objects.select_for_update().get(pk=message.pk)  # every column, whatever was deferred
    key = f"{RESEND_KEY_PREFIX}{token}"[:255] if token else ""
    if key:
        earlier = Message.objects.filter(resent_from=original, idempotency_key=key).first()
        if earlier is not None:
            return earlier
    if original.status in NOT_LEFT:
        raise InvalidTransition(resend_refusal(original))
    if gone := channels.for_row(original).content_unavailable(original):
        raise SealedContentGone(gone)
    template = EmailTemplate.objects.filter(key=original.template_key).only("kind", "max_attempts").first() \
        if original.template_key else None
    marketing = template is not None and template.kind == Kind.MARKETING
    [reasons] = suppression.reasons_at_send([([original.address], marketing)])
    now = timezone.now()
    status_fields = lifecycle.initial_fields(
        send_at=None, now=now, suppressed_because=reasons.get(address_key(original.address)))
    copy = Message(
        **{name: getattr(original, name) for name in COPIED},
        **status_fields,
        max_attempts=template.max_attempts if template is not None else settings.OUTBOX_RETRY_MAX_ATTEMPTS,
        source_endpoint=RESEND_ENDPOINT,
        sent_by=requested_by,
        resent_from=original,
        idempotency_key=key,
    )
    copy.save(force_insert=True)
    EmailAttachment.objects.bulk_create(
        EmailAttachment(message=copy, filename=item.filename, content_type=item.content_type,
                        size_bytes=item.size_bytes, blob_id=item.blob_id)
        for item in original.attachments.all()
    )
    if copy.status == Status.QUEUED:
        wakeups.wake_on_commit([copy.lane])
    return copy


@dataclass(frozen=True)
class RetryResult:
    """What a retry did: how many messages went back to `queued`, and why the others did not."""

    retried: int
    refused: dict[object, str] = field(default_factory=dict)  # message id → why not


@transaction.atomic
def retry_messages(*, message_ids: Iterable) -> RetryResult:
    """Failed or expired messages back to `queued`, due now, one more attempt allowed
    (`lifecycle.retry_now`); their lanes are woken on commit. A message in another state, or
    masked with its unmasked content gone, is left as it is and reported in `refused`.
    """
    rows = list(Message.objects.filter(pk__in=list(message_ids))
                .only("pk", "status", "is_masked", "sealed_content", "lane"))
    refused = {row.pk: reason for row in rows if (reason := retry_refusal(row))}
    eligible = [row for row in rows if row.pk not in refused]
    retried = lifecycle.retry_now([row.pk for row in eligible]) if eligible else 0
    if retried:
        wakeups.wake_on_commit({row.lane for row in eligible})
    return RetryResult(retried=retried, refused=refused)
