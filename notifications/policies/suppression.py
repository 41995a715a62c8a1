"""The suppression list: who no mail (or no marketing mail) goes to any more, and why.

Checked twice: when a send is written (its rows are written `suppressed`, with the reason,
through `lifecycle.initial_fields`) and when a worker claims queued or scheduled rows (an
address suppressed since is `suppressed` then, never sent: `lifecycle.suppress_claimed`).
Each check is one query for all the addresses at hand, never one per message.

Addresses go on the list from the signals of the state machine and of the tracking
webhooks (`notifications.receivers`): a permanent bounce or a complaint for all mail, an
unsubscribe for marketing mail. Staff lift a suppression in the admin; the row stays.
"""
from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connections, router, transaction
from django.db.models.functions import Lower
from django.utils import timezone

from notifications import audit_text
from notifications.audit_text import AuditText
from notifications.models import Message, EmailTemplate, Kind, Reason, Scope, Suppression
from notifications.signals import announce, recipient_suppressed
from notifications.core.addresses import address_key

from notifications.core import channels
from notifications.core.outbox import raw_sql

logger = logging.getLogger(__name__)

EMAIL = "email"  # the address kind of every suppression before the SMS channel


def _active(keys: Iterable[tuple[str, str]], *, marketing: bool) -> dict[tuple[str, str], Suppression]:
    """The active suppressions that apply to `keys` ((address kind, suppression key) pairs),
    by that pair; one query.

    A suppression for all mail wins over a marketing one when an address has both.
    """
    wanted = set(keys)
    if not wanted:
        return {}
    scopes = [Scope.ALL, Scope.MARKETING] if marketing else [Scope.ALL]
    rows = Suppression.objects.active().filter(
        address_kind__in={kind for kind, _ in wanted}, address__in={address for _, address in wanted}, scope__in=scopes)
    found: dict[tuple[str, str], Suppression] = {}
    for row in rows.order_by():
        key = (row.address_kind, row.address)
        if key in wanted and (key not in found or row.scope == Scope.ALL):
            found[key] = row
    return found


#: What `reason_text` reads of a suppression: all a send needs.
_AT_SEND_FIELDS = ("id", "address", "scope", "reason", "created_at")


def _active_at_send(addresses: Iterable[str], *, marketing: bool, address_kind: str) -> dict[str, Suppression]:
    """`_active` for a send being written: the same rows, read with SQL written once per
    process (`raw_sql`), as every send runs this lookup; only the fields `reason_text` reads."""
    wanted = sorted({address_key(address) for address in addresses})
    if not wanted:
        return {}
    scopes = [Scope.ALL, Scope.MARKETING] if marketing else [Scope.ALL]
    alias = router.db_for_read(Suppression)
    found: dict[str, Suppression] = {}
    with connections[alias].cursor() as cursor:
        cursor.execute(_active_at_send_sql(alias, len(wanted), len(scopes)), [address_kind, *wanted, *scopes])
        rows = cursor.fetchall()
    fields = raw_sql.columns(Suppression, "s", alias, _AT_SEND_FIELDS)
    for row in rows:
        suppression = fields.instance(row, alias)
        if suppression.address not in found or suppression.scope == Scope.ALL:
            found[suppression.address] = suppression
    return found


@functools.lru_cache(maxsize=64)
def _active_at_send_sql(alias: str, addresses: int, scopes: int) -> str:
    def col(name):
        return "s." + raw_sql.column(Suppression, name, alias)

    def marks(count):
        return ", ".join(["%s"] * count)

    return (
        f"SELECT {raw_sql.columns(Suppression, 's', alias, _AT_SEND_FIELDS).sql} "
        f"FROM {raw_sql.table(Suppression, alias)} s WHERE {col('lifted_at')} IS NULL "  # Suppression.objects.active()
        f"AND {col('address_kind')} = %s AND {col('address')} IN ({marks(addresses)}) AND {col('scope')} IN ({marks(scopes)})"
    )


def reason_text(suppression: Suppression) -> AuditText:
    """What a suppressed message's error says: stored as a code, shown in the reader's language."""
    return AuditText("suppressed", {
        "address": suppression.address,
        "scope": audit_text.label("scope", suppression.scope),
        "reason": audit_text.label("reason", suppression.reason),
        "date": audit_text.date(suppression.created_at.date()),
    })


def reasons_at_send(groups: Sequence[tuple[Sequence[str], bool]], *, address_kind: str = EMAIL,
                    ) -> list[dict[str, AuditText]]:
    """For a send being written, one query: for each (addresses, is marketing) group, the
    normalised addresses (of `address_kind`) that are suppressed → why."""
    found = _active_at_send([address for addresses, _ in groups for address in addresses],
                            marketing=any(marketing for _, marketing in groups), address_kind=address_kind)
    result = []
    for addresses, marketing in groups:
        rows = {address_key(address): found.get(address_key(address)) for address in addresses}
        result.append({address: reason_text(row) for address, row in rows.items()
                       if row is not None and (marketing or row.scope == Scope.ALL)})
    return result


def held_back(rows: Sequence[Message]) -> dict[object, str]:
    """For a claimed batch of any channels' rows: message id → why it must not be sent, for
    the suppressed ones. Each row is looked up by its channel's address kind and key
    (`Channel.suppression_key`: a lower-cased email address, a normalised phone number).

    One query for the batch; a second, only when a marketing-only suppression matches, to
    learn which of those messages are marketing mail (their template's kind).
    """
    keys = {}
    for key, group in channels.group_by_channel(rows).items():
        channel = channels.get(key)
        for row in group:
            keys[row.pk] = (channel.address_kind, channel.suppression_key(row.address))
    found = _active(keys.values(), marketing=True)
    if not found:
        return {}
    needs_kind = {row.template_key for row in rows if row.template_key
                  and getattr(found.get(keys[row.pk]), "scope", None) == Scope.MARKETING}
    marketing = set(EmailTemplate.objects.filter(key__in=needs_kind, kind=Kind.MARKETING)
                    .values_list("key", flat=True)) if needs_kind else set()
    held = {}
    for row in rows:
        suppression = found.get(keys[row.pk])
        if suppression is None:
            continue
        if suppression.scope == Scope.ALL or row.template_key in marketing:
            held[row.pk] = reason_text(suppression)
    return held


def suppress(*, address: str, scope: str, reason: str, detail: str = "", source_event=None,
             created_by=None, address_kind: str = EMAIL) -> Suppression | None:
    """Put `address` (of `address_kind`) on the list for `scope`; the new row, or None when it
    already was.

    `recipient_suppressed` is sent once the row is committed, for a new row only.
    """
    address = address_key(address, kind=address_kind)
    if not address or Suppression.objects.active().filter(
            address_kind=address_kind, address=address, scope=scope).exists():
        return None
    try:
        with transaction.atomic():
            suppression = Suppression.objects.create(
                address_kind=address_kind, address=address, scope=scope, reason=reason, detail=audit_text.clipped(detail), source_event=source_event,
                created_by=created_by,
            )
    except IntegrityError:  # suppressed meanwhile by a concurrent event (the partial unique index)
        return None
    logger.info("Suppressed %s for %s mail (%s).", address, scope, reason)
    transaction.on_commit(lambda: _announce(suppression))
    return suppression


@dataclass(frozen=True)
class Wanted:
    """An address to put on the list, for `suppress_many`."""

    address: str
    scope: str
    reason: str
    detail: str = ""
    source_event: object = None
    address_kind: str = EMAIL


def suppress_many(wanted: Sequence[Wanted]) -> list[Suppression]:
    """`suppress` for many addresses at once (a provider's batch of events): one read of the
    active suppressions, one insert, one read back; the new rows, each announced after
    commit. An address already on the list for that scope (or twice in `wanted`) is skipped.
    """
    rows: dict[tuple[str, str, str], Suppression] = {}
    for item in wanted:
        address = address_key(item.address, kind=item.address_kind)
        if address and (item.address_kind, address, item.scope) not in rows:
            rows[(item.address_kind, address, item.scope)] = Suppression(
                address_kind=item.address_kind, address=address, scope=item.scope, reason=item.reason, detail=audit_text.clipped(item.detail),
                source_event=item.source_event,
            )
    if not rows:
        return []
    active = set(Suppression.objects.active().filter(address__in={address for _, address, _ in rows})
                 .values_list("address_kind", "address", "scope"))
    new = [row for key, row in rows.items() if key not in active]
    if not new:
        return []
    with transaction.atomic():
        # A concurrent event may suppress the same address first (the partial unique index).
        Suppression.objects.bulk_create(new, ignore_conflicts=True)
        written = set(Suppression.objects.filter(pk__in=[row.pk for row in new]).values_list("pk", flat=True))
    created = [row for row in new if row.pk in written]
    for row in created:
        logger.info("Suppressed %s for %s mail (%s).", row.address, row.scope, row.reason)
        transaction.on_commit(functools.partial(_announce, row))
    return created


def _announce(suppression: Suppression) -> None:
    announce(recipient_suppressed, sender=Suppression, about=f"for {suppression.address}",
             suppression=suppression, address=suppression.address, scope=suppression.scope)


def lift(suppressions: Iterable[Suppression], *, by) -> int:
    """Staff lift suppressions: mail goes to those addresses again. The rows stay, with who
    lifted them and when."""
    ids = [suppression.pk for suppression in suppressions]
    return Suppression.objects.active().filter(pk__in=ids).update(lifted_at=timezone.now(), lifted_by=by)


def deactivate_user(address: str) -> int:
    """With `EMAIL_DEACTIVATE_USER_ON_PERMANENT_FAILURE`, make the accounts with this address
    inactive (003: a permanent failure deactivates the account, as a security feature)."""
    return deactivate_users([address])


def deactivate_users(addresses: Iterable[str]) -> int:
    """`deactivate_user` for several addresses: one UPDATE."""
    wanted = sorted({address_key(address) for address in addresses} - {""})
    if not wanted or not settings.EMAIL_DEACTIVATE_USER_ON_PERMANENT_FAILURE:
        return 0
    User = get_user_model()
    field = User.get_email_field_name()
    changed = User.objects.alias(_address=Lower(field)).filter(_address__in=wanted, is_active=True).update(
        is_active=False
    )
    if changed:
        logger.warning("%d user account(s) with address(es) %s made inactive after a permanent bounce "
                       "(EMAIL_DEACTIVATE_USER_ON_PERMANENT_FAILURE).", changed, ", ".join(wanted[:20]))
    return changed


__all__ = ["Reason", "Scope", "Wanted", "deactivate_user", "deactivate_users", "held_back", "lift",
           "reason_text", "reasons_at_send", "suppress", "suppress_many"]
