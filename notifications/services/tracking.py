"""What providers report after `sent`: store each event once, and apply it to its message.

Every source of delivery events goes through `record`: anymail's tracking webhooks (SES
through SNS, SendGrid; see notifications/webhooks/), 004's `/api/v1/email/webhook`, and the
test-key simulator. An event is stored whatever comes of it:

- once: the unique constraint on (provider, provider event id, recipient, type) turns a
  replayed webhook into a no-op, and `delivery_event_recorded` fires for new events only;
- unmatched when no known message is found, so the provider stops retrying and staff see it;
- `pending` when its message is not yet `sent` (the worker records a batch after the server
  took it, and a provider may report first): the drain applies pending events right after it
  records the batch (`apply_pending`), and a later event for the message applies them too.

Statuses change only through the state machine (`services.lifecycle`), whose conditional
UPDATEs keep CONTRACT.md's order of strength: a late or reordered event never moves a
message backwards.
"""
from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import IntegrityError, transaction

from notifications.models import BounceType, DeliveryEvent, EmailMessage, EventType, Status
from notifications.signals import delivery_event_recorded

from . import lifecycle

logger = logging.getLogger(__name__)

NOT_YET_SENT = (Status.SCHEDULED, Status.QUEUED, Status.SENDING)


@dataclass(frozen=True)
class ProviderEvent:
    """One event as a provider (or the simulator) reported it, normalized.

    `notification_id` is our message id when the event carries it (ESP metadata, or our
    `X-Notification-Id` among the mail headers); `provider_message_id` and `recipient` are
    the fallback for finding the message.
    """

    provider: str
    event_type: str  # an EventType
    occurred_at: datetime
    provider_event_id: str = ""
    provider_message_id: str = ""
    recipient: str = ""
    notification_id: str = ""
    bounce_type: str = ""  # a BounceType, for bounces
    bounce_subtype: str = ""
    detail: str = ""
    payload: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Recorded:
    """What `record` did: the stored event (None for a duplicate), and whether it was new."""

    event: DeliveryEvent | None
    created: bool
    message: EmailMessage | None = None


def record(event: ProviderEvent) -> Recorded:
    """Store `event` once and apply it to its message; `delivery_event_recorded` after commit."""
    message = find_message(event)
    with transaction.atomic():
        if message is not None:
            # Lock the row: a drain recording it `sent` right now either commits first (we see
            # `sent` and apply) or waits for our pending event, which it then applies.
            message = EmailMessage.objects.select_for_update().filter(pk=message.pk).first()
        stored = _store(event, message)
        if stored is None:
            return Recorded(None, False, message)
        if message is not None and message.status not in NOT_YET_SENT:
            _apply(stored, message)
            _apply_pending_of(message.pk)
        transaction.on_commit(
            lambda: delivery_event_recorded.send(sender=DeliveryEvent, event=stored, message=message)
        )
    return Recorded(stored, True, message)


def _store(event: ProviderEvent, message: EmailMessage | None) -> DeliveryEvent | None:
    """The new row, or None when the same event was stored before."""
    row = DeliveryEvent(
        message=message, event_type=event.event_type, provider=event.provider[:50],
        provider_event_id=event.provider_event_id[:255], provider_message_id=event.provider_message_id[:255],
        recipient=event.recipient[:320], occurred_at=event.occurred_at, detail=event.detail,
        bounce_type=event.bounce_type, bounce_subtype=event.bounce_subtype[:50],
        payload=event.payload, pending=message is not None and message.status in NOT_YET_SENT,
    )
    if row.provider_event_id and DeliveryEvent.objects.filter(
        provider=row.provider, provider_event_id=row.provider_event_id, recipient=row.recipient,
        event_type=row.event_type,
    ).exists():
        return None
    try:
        with transaction.atomic():  # a concurrent copy of the same event may win the insert
            row.save(force_insert=True)
    except IntegrityError:
        return None
    return row


def find_message(event: ProviderEvent) -> EmailMessage | None:
    """Our id from the event; else the provider's message id (with the recipient when it
    names one among several rows)."""
    if event.notification_id:
        try:
            pk = uuid.UUID(str(event.notification_id).strip())
        except ValueError:
            pk = None
        found = EmailMessage.objects.filter(pk=pk).first() if pk else None
        if found is not None:
            return found
    if not event.provider_message_id:
        return None
    ids = {event.provider_message_id, event.provider_message_id.strip("<>"), f"<{event.provider_message_id.strip('<>')}>"}
    candidates = list(EmailMessage.objects.filter(provider_message_id__in=ids)[:50])
    if len(candidates) > 1 and event.recipient:
        candidates = [row for row in candidates if row.recipient_email.lower() == event.recipient.lower()]
    return candidates[0] if len(candidates) == 1 else None


def apply_pending(message_ids: Iterable) -> int:
    """Apply the events kept for these messages while they were not yet `sent` (the drain
    calls it once it has recorded them sent); returns how many were applied."""
    ids = list(message_ids)
    if not ids:
        return 0
    # No join of the messages: `_apply_events` reads each one afresh, and nearly always
    # nothing is waiting (the partial index `delivery_event_pending` answers alone).
    waiting = list(DeliveryEvent.objects.filter(pending=True, message_id__in=ids))
    return _apply_events(waiting)


def _apply_pending_of(message_id) -> int:
    return _apply_events(list(DeliveryEvent.objects.filter(pending=True, message_id=message_id)))


def _apply_events(events: list[DeliveryEvent]) -> int:
    applied = 0
    for event in sorted(events, key=lambda row: (row.occurred_at, row.created_at)):
        message = EmailMessage.objects.filter(pk=event.message_id).first()
        if message is None or message.status in NOT_YET_SENT:
            continue
        _apply(event, message)
        DeliveryEvent.objects.filter(pk=event.pk).update(pending=False)
        applied += 1
    return applied


def _apply(event: DeliveryEvent, message: EmailMessage) -> lifecycle.Transition | None:
    """The status change the event calls for, through the state machine.

    Only an event about the row's own recipient moves its status: a cc or bcc address's
    bounce is stored with the message but does not make the recipient's copy bounced.
    """
    if event.recipient and event.recipient.lower() != message.recipient_email.lower():
        return None
    kind = event.event_type
    if kind == EventType.DELIVERED:
        return lifecycle.mark_delivered(message.pk, at=event.occurred_at)
    if kind == EventType.BOUNCED:
        return lifecycle.mark_bounced(
            message.pk, bounce_type=event.bounce_type or BounceType.PERMANENT, bounce_subtype=event.bounce_subtype,
        )
    if kind == EventType.COMPLAINT:
        return lifecycle.mark_complaint(message.pk)
    if kind == EventType.FAILED:
        return lifecycle.mark_dropped(message.pk, reason=event.detail or f"Refused by {event.provider}.")
    return None  # sent, deferred, opened, clicked, unsubscribed, other: an event only


__all__ = ["ProviderEvent", "Recorded", "apply_pending", "find_message", "record"]
