"""Deliver many queued messages in one task: one claim that reads them, one write of outcomes.

Delivered one by one (`delivery.deliver`), a message costs two database round trips (its
claim, which returns the row, and its outcome) around one SMTP exchange, and on PostgreSQL
they cost about as much as the exchange. A batch claims all its ids in one UPDATE that
returns their rows (`services.claims`), sends each over the process's kept-open connection
(`backends.connections`) and records the sent ones with one UPDATE per flush (`delivery.record_sent`). The claim
stays atomic per row: two workers holding the same ids each send only the rows their own
UPDATE returned.

Two windows stay bounded. The sent ones are recorded at least every `FLUSH_SECONDS`, so a
worker killed mid-batch leaves at most that much to be sent again after its lease. And a
batch that outlives half of `EMAIL_SENDING_LEASE_SECONDS` (a server timing out on every
message) puts its unsent rest back to `queued` and publishes it again, before the sweep
could hand those rows to another worker while this one still holds them.
"""
from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable, Sequence

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from notifications.models import EmailMessage, Status
from notifications.services.claims import claim_many
from notifications.services.delivery import SKIPPED, Sent, record_sent, send_claimed

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0
FLUSH_ROWS = 100  # keeps the outcome UPDATE well within SQLite's bound on parameters
RELEASED = "released"


def deliver_many(*, message_ids: Sequence) -> dict[str, int]:
    """Claim, send and record a batch of messages, in the order given.

    Returns how many ended `sent`, `failed`, `skipped` (claimed elsewhere, or finished) and
    `released` (put back to `queued` for another task, see the module's docstring).
    """
    wanted = list(dict.fromkeys(EmailMessage._meta.pk.to_python(value) for value in message_ids))
    rows = {message.pk: message for message in claim_many(wanted)}
    counts = Counter({SKIPPED: len(wanted) - len(rows)})
    if not rows:
        return dict(counts)
    claimed_at = time.monotonic()
    order = [pk for pk in wanted if pk in rows]
    pending: list[Sent] = []
    last_flush = claimed_at
    try:
        for index, pk in enumerate(order):
            # Past half the lease, hand the rest on; the first is always sent, so a batch
            # moves forward whatever the lease (even 0).
            if index and time.monotonic() - claimed_at > settings.EMAIL_SENDING_LEASE_SECONDS / 2:
                counts[RELEASED] += release([rows[rest] for rest in order[index:]])
                break
            outcome = send_claimed(rows[pk])
            if isinstance(outcome, Sent):
                pending.append(outcome)
                outcome = Status.SENT
            counts[outcome] += 1
            if len(pending) >= FLUSH_ROWS or (pending and time.monotonic() - last_flush >= FLUSH_SECONDS):
                record_sent(pending)
                pending, last_flush = [], time.monotonic()
    finally:
        # Whatever stopped the loop, what the servers accepted is recorded.
        record_sent(pending)
    return dict(counts)


def release(messages: Iterable[EmailMessage]) -> int:
    """Put claimed but unsent messages back to `queued`, their attempt not counted, and publish them."""
    from notifications.tasks import enqueue_deliveries

    messages = list(messages)
    released = EmailMessage.objects.filter(pk__in=[m.pk for m in messages], status=Status.SENDING).update(
        status=Status.QUEUED, attempts=F("attempts") - 1, updated_at=timezone.now()
    )
    logger.warning("A delivery batch outlived half its lease: %d unsent messages handed back.", released)
    transaction.on_commit(lambda: enqueue_deliveries(messages), robust=True)
    return released
