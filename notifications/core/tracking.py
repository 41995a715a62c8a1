"""What providers report after `sent`: store each event once, and apply it to its message.

Every source of delivery events goes through `record`: anymail's tracking webhooks (SES
through SNS, SendGrid; see notifications/channels/email/webhooks/), 004's `/api/v1/email/webhook`, and the
test-key simulator. An event is stored whatever comes of it:

- once: the unique constraint on (provider, provider event id, recipient, type) turns a
  replayed webhook into a no-op, and `delivery_event_recorded` fires for new events only;
- unmatched when no known message is found, so the provider stops retrying and staff see it;
- `pending` when its message is not yet `sent` (the worker records a batch after the server
  took it, and a provider may report first): the drain applies pending events right after it
  records the batch (`apply_pending`), and a later event for the message applies them too.

Statuses change only through the state machine (`core.outbox.lifecycle`), whose conditional
UPDATEs keep CONTRACT.md's order of strength: a late or reordered event never moves a
message backwards.
"""
from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction

from notifications.audit_text import AuditText
from notifications.core.addresses import address_key
from notifications.models import BounceType, DeliveryEvent, Message, EventType, Status
from notifications.signals import announce, delivery_event_recorded, delivery_events_recorded

from notifications.core import channels
from notifications.core.outbox import lifecycle
from notifications.core.outbox import raw_sql

logger = logging.getLogger(__name__)

NOT_YET_SENT = (Status.SCHEDULED, Status.QUEUED, Status.SENDING)
CHUNK = 5000  # ids per IN (...) list: under SQLite's bound on parameters (32766)


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
    detail: str = ""  # a provider's own words, as it sent them
    payload: dict = field(default_factory=dict)
    description: AuditText | None = None  # our own words instead (the simulator's): stored as a code


@dataclass(frozen=True)
class Recorded:
    """What `record` did: the stored event (None for a duplicate), and whether it was new."""

    event: DeliveryEvent | None
    created: bool
    message: Message | None = None


def record(event: ProviderEvent) -> Recorded:
    """Store `event` once and apply it to its message; `delivery_event_recorded` after commit."""
    return record_many([event])[0]


def record_many(events: Sequence[ProviderEvent]) -> list[Recorded]:
    """Store each of `events` once and apply them to their messages, in a number of SQL
    statements that does not grow with the events' number (a provider posts thousands at
    once): one read of their messages, one lock of them, one read of the events already
    stored, one insert, one UPDATE per kind of status change.

    `delivery_event_recorded` is sent after commit for each new event, then
    `delivery_events_recorded` once for all of them (the suppression policy, in bulk).
    """
    if not events:
        return []
    found = find_messages(events, check_provider=False)
    with transaction.atomic():
        ids = sorted({message.pk for message in found if message is not None}, key=str)
        # Lock the rows: a drain recording one `sent` right now either commits first (we see
        # `sent`, and its provider, and apply) or waits for our pending event, which it then applies.
        locked = {message.pk: message
                  for message in Message.objects.select_for_update().filter(pk__in=ids).order_by("pk")} if ids else {}
        messages = _of_their_provider(events, [locked.get(message.pk) if message is not None else None
                                               for message in found])
        stored = _store_many(events, messages)
        _apply_new([(row, message) for row, message in zip(stored, messages, strict=True)
                    if row is not None and message is not None and message.status not in NOT_YET_SENT])
        recorded = [Recorded(row, row is not None, message) for row, message in zip(stored, messages, strict=True)]
        new = [(item.event, item.message) for item in recorded if item.created]
        if new:
            transaction.on_commit(lambda: _announce(new))
    return recorded


def _announce(new: list[tuple[DeliveryEvent, Message | None]]) -> None:
    for event, message in new:
        announce(delivery_event_recorded, sender=DeliveryEvent, about=f"for event {event.pk}", event=event,
                 message=message)
    announce(delivery_events_recorded, sender=DeliveryEvent, about=f"for {len(new)} events", events=new)


def _detail_fields(event: ProviderEvent) -> dict:
    if event.description is None:
        return {"detail": event.detail}
    data = event.description.as_data()
    return {"detail": event.description.english, "detail_code": data["code"], "detail_params": data["params"]}


def _store_many(events: Sequence[ProviderEvent], messages: Sequence[Message | None]) -> list[DeliveryEvent | None]:
    """The new rows, None in place of an event stored before (or twice in `events`)."""
    rows = [DeliveryEvent(
        message=message, event_type=event.event_type, provider=event.provider[:50],
        provider_event_id=event.provider_event_id[:255], provider_message_id=event.provider_message_id[:255],
        recipient=event.recipient[:320], occurred_at=event.occurred_at,
        **_detail_fields(event),
        bounce_type=event.bounce_type, bounce_subtype=event.bounce_subtype[:50],
        payload=event.payload, pending=message is not None and message.status in NOT_YET_SENT,
    ) for event, message in zip(events, messages, strict=True)]
    event_ids = {(row.provider, row.provider_event_id) for row in rows if row.provider_event_id}
    seen = set()
    if event_ids:
        for chunk in _chunks(sorted(event_ids), CHUNK):
            seen |= set(DeliveryEvent.objects.filter(
                provider__in={provider for provider, _ in chunk}, provider_event_id__in=[pid for _, pid in chunk],
            ).values_list("provider", "provider_event_id", "recipient", "event_type"))
    fresh: list[DeliveryEvent | None] = []
    for row in rows:
        key = (row.provider, row.provider_event_id, row.recipient, row.event_type)
        if row.provider_event_id:
            if key in seen:
                fresh.append(None)
                continue
            seen.add(key)
        fresh.append(row)
    new = [row for row in fresh if row is not None]
    if not new:
        return fresh
    # A concurrent copy of the same event may win an insert: those rows are skipped, and
    # read back to learn which of ours were written.
    raw_sql.insert_many(new, ignore_conflicts=True)
    written = set()
    for chunk in _chunks([row.pk for row in new], CHUNK):
        written |= set(DeliveryEvent.objects.filter(pk__in=chunk).values_list("pk", flat=True))
    return [row if row is not None and row.pk in written else None for row in fresh]


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def find_messages(events: Sequence[ProviderEvent], *, check_provider: bool = True) -> list[Message | None]:
    """`find_message` for many events: two queries at most, whatever their number.

    A message found is kept only when the event's provider may report on it (`accepts`):
    an event from another provider's route is stored unmatched and changes nothing.
    `check_provider=False`: every message found (the caller checks the locked rows).
    """
    by_id: dict[uuid.UUID, Message] = {}
    pks = {pk for pk in (_uuid(event.notification_id) for event in events) if pk is not None}
    for chunk in _chunks(sorted(pks, key=str), CHUNK):
        by_id.update((row.pk, row) for row in Message.objects.filter(pk__in=chunk))
    wanted = {}
    for event in events:
        if _uuid(event.notification_id) not in by_id and event.provider_message_id:
            wanted[event.provider_message_id] = _message_id_forms(event.provider_message_id)
    by_provider_id: dict[str, list[Message]] = {}
    forms = sorted({form for group in wanted.values() for form in group})
    for chunk in _chunks(forms, CHUNK):
        for row in Message.objects.filter(provider_message_id__in=chunk):
            by_provider_id.setdefault(row.provider_message_id, []).append(row)
    found: list[Message | None] = []
    for event in events:
        message = by_id.get(_uuid(event.notification_id))
        if message is None and event.provider_message_id:
            candidates = [row for form in wanted[event.provider_message_id] for row in by_provider_id.get(form, [])]
            if len(candidates) > 1 and event.recipient:
                candidates = [row for row in candidates if address_key(row.address) == address_key(event.recipient)]
            message = candidates[0] if len(candidates) == 1 else None
        found.append(message)
    return _of_their_provider(events, found) if check_provider else found


def _of_their_provider(events: Sequence[ProviderEvent], found: list[Message | None]) -> list[Message | None]:
    """`found`, with None for a message the event's provider may not report on (`accepts`)."""
    keys = _accepted_blank_keys(events)
    kept: list[Message | None] = []
    for event, message in zip(events, found, strict=True):
        if message is not None and not accepts(message, event.provider, blank_keys=keys):
            logger.warning("A %s event names message %s, sent through %r: stored unmatched, nothing changed.",
                           event.provider, message.pk, message.provider or "?")
            message = None
        kept.append(message)
    return kept


def find_message(event: ProviderEvent) -> Message | None:
    """Our id from the event; else the provider's message id (with the recipient when it
    names one among several rows); None as well when the event's provider may not report
    on the message found (`accepts`)."""
    return find_messages([event])[0]


def accepts(message: Message, provider: str, *, blank_keys: set[str] | None = None) -> bool:
    """Whether an event from `provider` may change `message`: the provider that took it.

    A message without a key (not yet recorded sent, or sent before the key was recorded)
    takes the events of the providers the configured channels hand messages to
    (`Provider.keys`: for email, those of `EMAIL_BACKEND`).
    """
    if message.provider:
        return message.provider == provider
    keys = blank_keys if blank_keys is not None else channels.provider_keys()
    return provider in keys


def _accepted_blank_keys(events: Sequence[ProviderEvent]) -> set[str] | None:
    """The configured backend's keys, read once for a batch (None: read when needed)."""
    return None if len(events) == 1 else channels.provider_keys()


def _uuid(value: str) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(str(value).strip())
    except ValueError:
        return None


def _message_id_forms(value: str) -> set[str]:
    bare = value.strip("<>")
    return {value, bare, f"<{bare}>"}


def _apply_new(pairs: list[tuple[DeliveryEvent, Message]]) -> None:
    """Apply new events to their (sent) messages: in bulk, except for a message with several
    status-changing events in the batch, whose events are applied one by one in order."""
    reports: dict[object, list[lifecycle.Report]] = {}
    for event, message in sorted(pairs, key=lambda pair: (pair[0].occurred_at, str(pair[0].pk))):
        report = _report(event, message)
        if report is not None:
            reports.setdefault(message.pk, []).append(report)
    lifecycle.apply_reports([group[0] for group in reports.values() if len(group) == 1])
    for group in reports.values():
        if len(group) > 1:
            for report in group:
                lifecycle.apply_report(report)
    apply_pending(sorted({message.pk for _, message in pairs}, key=str))


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


def _apply_events(events: list[DeliveryEvent]) -> int:
    applied = 0
    for event in sorted(events, key=lambda row: (row.occurred_at, row.created_at)):
        message = Message.objects.filter(pk=event.message_id).first()
        if message is None or message.status in NOT_YET_SENT:
            continue
        if accepts(message, event.provider):
            report = _report(event, message)
            if report is not None:
                lifecycle.apply_report(report)
        else:
            logger.warning("A pending %s event of message %s, sent through %r, is not applied.",
                           event.provider, message.pk, message.provider)
        DeliveryEvent.objects.filter(pk=event.pk).update(pending=False)
        applied += 1
    return applied


KINDS = {EventType.DELIVERED: "delivered", EventType.BOUNCED: "bounced", EventType.COMPLAINT: "complaint",
         EventType.FAILED: "failed"}


def _report(event: DeliveryEvent, message: Message) -> lifecycle.Report | None:
    """The status change the event calls for, for the state machine; None for none.

    Only an event about the row's own recipient moves its status: a cc or bcc address's
    bounce is stored with the message but does not make the recipient's copy bounced.
    Sent, deferred, opened, clicked, unsubscribed, other: an event only.
    """
    if event.recipient and address_key(event.recipient) != address_key(message.address):
        return None
    kind = KINDS.get(event.event_type)
    if kind is None:
        return None
    return lifecycle.Report(
        message_id=message.pk, kind=kind, at=event.occurred_at,
        bounce_type=(event.bounce_type or BounceType.PERMANENT) if kind == "bounced" else "",
        bounce_subtype=event.bounce_subtype if kind == "bounced" else "",
        reason=_drop_reason(event) if kind == "failed" else None,
    )


def _drop_reason(event: DeliveryEvent) -> AuditText:
    """Why a provider dropped a message: our sentence, with its own reply kept as it came."""
    if event.detail_code:
        return AuditText(event.detail_code, event.detail_params or {})
    if event.detail:
        return AuditText("dropped_with_reply", {"provider": event.provider, "reply": event.detail})
    return AuditText("dropped", {"provider": event.provider})


__all__ = ["ProviderEvent", "Recorded", "accepts", "apply_pending", "find_message", "find_messages", "record",
           "record_many"]
