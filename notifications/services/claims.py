"""Claims: a queued message moves to `sending` for exactly one worker, which then sends it.

A claim is one conditional UPDATE, `… SET status = 'sending' WHERE id IN (…) AND status =
'queued'`: whichever worker (or redelivered task, or overlapping batch) runs it first gets
the row, on any database and any number of workers; the others' UPDATE no longer matches.
On PostgreSQL and SQLite 3.35+ the same statement returns the claimed rows (`RETURNING`),
so a worker reads what it won in the round trip that won it.
"""
from __future__ import annotations

from collections.abc import Sequence

from django.db import connection
from django.db.models import F
from django.utils import timezone

from notifications.models import EmailMessage, Status

RETURNING_VENDORS = {"postgresql", "sqlite"}


def claim(message_id) -> EmailMessage | None:
    """Claim one message: the row, now `sending`, or None when it is not queued."""
    claimed = claim_many([message_id])
    return claimed[0] if claimed else None


def claim_many(message_ids: Sequence) -> list[EmailMessage]:
    """Claim the queued ones of `message_ids`; returns their rows, in no particular order.

    Each claimed row's `attempts` goes up by one.
    """
    if not message_ids:
        return []
    if connection.vendor not in RETURNING_VENDORS:
        return _claim_one_by_one(message_ids)
    meta = EmailMessage._meta
    quote = connection.ops.quote_name
    status, attempts, updated_at = (quote(meta.get_field(name).column) for name in ("status", "attempts", "updated_at"))
    pk_column = quote(meta.pk.column)
    columns = ", ".join(quote(field.column) for field in meta.concrete_fields)
    placeholders = ", ".join(["%s"] * len(message_ids))
    sql = (
        f"UPDATE {quote(meta.db_table)} SET {status} = %s, {attempts} = {attempts} + 1, {updated_at} = %s "
        f"WHERE {pk_column} IN ({placeholders}) AND {status} = %s RETURNING {columns}"
    )
    now = meta.get_field("updated_at").get_db_prep_value(timezone.now(), connection)
    params = (Status.SENDING, now, *(meta.pk.get_db_prep_value(pk, connection) for pk in message_ids), Status.QUEUED)
    # A raw queryset turns the returned columns into instances through the fields' converters.
    return list(EmailMessage.objects.raw(sql, params))


def _claim_one_by_one(message_ids: Sequence) -> list[EmailMessage]:
    """For a database without UPDATE … RETURNING: each id its own conditional UPDATE, then one read."""
    won = [
        pk for pk in message_ids
        if EmailMessage.objects.filter(pk=pk, status=Status.QUEUED).update(
            status=Status.SENDING, attempts=F("attempts") + 1, updated_at=timezone.now()
        )
    ]
    return list(EmailMessage.objects.filter(pk__in=won))


__all__ = ["claim", "claim_many"]
