"""Deliver many queued messages in one task: one claim, one read, one write of outcomes.

Delivered one by one (`delivery.deliver`), a message costs three database round trips
around one SMTP exchange, and on PostgreSQL they cost more than the exchange. A batch
claims its ids with one `UPDATE … WHERE id IN (…) AND status = 'queued' RETURNING id`
(PostgreSQL; SQLite 3.35 and later), reads the claimed rows with one SELECT, sends each
over the process's kept-open connection (`backends.connections`) and records the sent ones
with one UPDATE per flush. The claim stays atomic per row: two workers holding the same
ids each send only the rows their own UPDATE returned.

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
from django.db import connection, transaction
from django.db.models import F
from django.db.models.expressions import RawSQL
from django.utils import timezone

from notifications.models import EmailMessage, Status
from notifications.services.delivery import SKIPPED, Sent, claim, send_claimed

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
    claimed = claim_many(wanted)
    counts = Counter({SKIPPED: len(wanted) - len(claimed)})
    if not claimed:
        return dict(counts)
    claimed_at = time.monotonic()
    rows = EmailMessage.objects.in_bulk(claimed)
    order = [pk for pk in wanted if pk in rows]
    pending: list[Sent] = []
    last_flush = claimed_at
    try:
        for index, pk in enumerate(order):
            if time.monotonic() - claimed_at > settings.EMAIL_SENDING_LEASE_SECONDS / 2:
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


def claim_many(message_ids: Sequence) -> list:
    """Move the queued ones of `message_ids` to `sending`; returns the ids this call claimed."""
    if not message_ids:
        return []
    if connection.vendor not in {"postgresql", "sqlite"}:  # no UPDATE … RETURNING: one by one
        return [pk for pk in message_ids if claim(pk)]
    meta = EmailMessage._meta
    quote = connection.ops.quote_name
    status, attempts, updated_at = (quote(meta.get_field(name).column) for name in ("status", "attempts", "updated_at"))
    pk_column = quote(meta.pk.column)
    placeholders = ", ".join(["%s"] * len(message_ids))
    sql = (
        f"UPDATE {quote(meta.db_table)} SET {status} = %s, {attempts} = {attempts} + 1, {updated_at} = %s "
        f"WHERE {pk_column} IN ({placeholders}) AND {status} = %s RETURNING {pk_column}"
    )
    now = meta.get_field("updated_at").get_db_prep_value(timezone.now(), connection)
    params = [Status.SENDING, now, *(meta.pk.get_db_prep_value(pk, connection) for pk in message_ids), Status.QUEUED]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [meta.pk.to_python(row[0]) for row in cursor.fetchall()]


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
