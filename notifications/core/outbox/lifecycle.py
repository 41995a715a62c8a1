"""The life of an `Message`: the one module that writes its status.

Every change of `status`, and of what moves with it (`attempts`, `next_attempt_at`,
`sent_at`, `provider`, `error_message` with its `error_code` and `error_params`,
`sealed_content`, `updated_at`), is a function here, and each is
one conditional UPDATE on the states it may leave: a transition asked of a row in any other
state changes nothing and tells its caller so (a count, or a `Transition`). Nothing else
writes a status; `tests/core/test_lifecycle.py` reads the source to keep it so.

    (written)  queued ──claim──▶ sending ──▶ sent ──▶ delivered / bounced / complaint
               scheduled ─┘         │  └──▶ queued (retry later, or released)
               suppressed ◀─────────┘  └──▶ failed / expired   (suppressed at claim: the address was suppressed since)
    queued, scheduled ──cancel──▶ cancelled          failed, expired ──retry──▶ queued

A queued or scheduled row always has `next_attempt_at`: when it is next due (its enqueue,
its `send_at`, or its retry time). The drain claims due rows in that order, so one partial
index serves every claim, and a message is never claimed before it is due.

After the transaction that changed rows commits, `signals.message_status_changed` is sent
for each changed row (`_apply`, `_announce`). Only when a receiver is connected: otherwise a
transition costs exactly its UPDATE, and with one it costs a locking read of the rows it
changes (their old status) and, after commit, one read of the changed rows.
"""
from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.db.models.expressions import RawSQL
from django.utils import timezone

from notifications.audit_text import AuditText, clipped
from notifications.models import BounceType, DeliveryAttempt, Message, Status
from notifications.signals import announce, message_status_changed
from notifications.core.outbox.raw_sql import RETURNING_VENDORS, SKIP_LOCKED_VENDORS, UNNEST_VENDORS

logger = logging.getLogger(__name__)

WAITING = (Status.QUEUED, Status.SCHEDULED)  # what a claim or a cancel may take
FINISHED_BADLY = (Status.FAILED, Status.EXPIRED)  # what staff may retry


@dataclass(frozen=True)
class Transition:
    """What a single-row transition did: `changed`, and the status the row was found in."""

    changed: bool
    status: str | None  # None: no such message

    def __bool__(self) -> bool:
        return self.changed


def said(text: AuditText | None) -> dict:
    """The error columns of a message for `text`: its code and parameters (shown in the
    reader's language), and its English sentence; none for None."""
    if text is None:
        return {"error_message": "", "error_code": "", "error_params": None}
    data = text.as_data()
    return {"error_message": clipped(text.english), "error_code": data["code"], "error_params": data["params"]}


# --- the status a row is first written with -------------------------------------------

def initial_fields(*, send_at: datetime | None, now: datetime, suppressed_because: AuditText | None = None) -> dict:
    """The status columns of a message about to be written.

    `suppressed` when sending is disabled (`OUTBOX_ACTIVE` false) or when its address is on the
    suppression list (`suppressed_because` says why: `policies.suppression`), `scheduled`
    when `send_at` is ahead, else `queued`, due now.
    """
    if not settings.OUTBOX_ACTIVE:
        return {"status": Status.SUPPRESSED, "next_attempt_at": None, "send_at": send_at,
                **said(AuditText("sending_disabled"))}
    if suppressed_because:
        return {"status": Status.SUPPRESSED, "next_attempt_at": None, "send_at": send_at, **said(suppressed_because)}
    if send_at is not None and send_at > now:
        return {"status": Status.SCHEDULED, "next_attempt_at": send_at, "send_at": send_at, **said(None)}
    return {"status": Status.QUEUED, "next_attempt_at": now, "send_at": send_at, **said(None)}


# --- claim -------------------------------------------------------------------------------

def claim_due(
    *, lane: str, limit: int, now: datetime | None = None, leave_out: Collection[str] = (),
) -> list[Message]:
    """Claim up to `limit` due messages of `lane`, oldest due first: their rows, now `sending`.

    One statement: a conditional UPDATE over a sub-select of due ids that returns the rows
    it took. On PostgreSQL the sub-select locks `FOR UPDATE SKIP LOCKED`, so concurrent
    workers neither wait on nor take each other's rows; elsewhere the UPDATE's own
    `status IN (queued, scheduled)` is the guard (SQLite serialises writers). Each claimed
    row's `attempts` goes up by one.

    `leave_out`: fields the claim does not return (deferred: read if ever touched), because
    no channel's delivery needs them at claim (`core.channels.claim_leaves_out`: the email
    channel's rendering, when its backend sends the bytes built at enqueue); the channels
    load what some rows need afterwards (`core.channels.prepare_claimed`).
    """
    now = now or timezone.now()
    if connection.vendor not in RETURNING_VENDORS:
        return _claim_without_returning(lane=lane, limit=limit, now=now)
    meta = Message._meta
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    col = {name: quote(meta.get_field(name).column) for name in ("status", "attempts", "updated_at", "lane",
                                                                   "next_attempt_at")}
    pk = quote(meta.pk.column)
    columns = ", ".join(quote(f.column) for f in meta.concrete_fields if f.name not in leave_out or f.primary_key)
    lock = " FOR UPDATE SKIP LOCKED" if connection.vendor in SKIP_LOCKED_VENDORS else ""
    # The statuses are written into the SQL, not bound: a generic plan (psycopg prepares a
    # statement after a few runs) can only use the partial index `message_lane_due` when
    # its predicate `status IN ('queued', 'scheduled')` is visible in the query itself.
    waiting = ", ".join(f"'{status}'" for status in WAITING)
    sql = (
        f"UPDATE {table} SET {col['status']} = %s, {col['attempts']} = {col['attempts']} + 1, "
        f"{col['updated_at']} = %s "
        f"WHERE {pk} IN (SELECT {pk} FROM {table} WHERE {col['lane']} = %s AND {col['status']} IN ({waiting}) "
        f"AND {col['next_attempt_at']} <= %s ORDER BY {col['next_attempt_at']} LIMIT %s{lock}) "
        f"AND {col['status']} IN ({waiting}) RETURNING {columns}"
    )
    stamp = _db_time(now)
    params = (Status.SENDING, stamp, lane, stamp, int(limit))
    # A raw queryset turns the returned columns into instances through the fields' converters.
    rows = list(Message.objects.raw(sql, params))
    if rows and message_status_changed.has_listeners():
        # The old status, without reading it first: a scheduled row is due at its `send_at`
        # (only `initial_fields` writes `scheduled`, with `next_attempt_at = send_at`); a
        # queued one at its enqueue, retry or release time.
        _announce([(row.pk, Status.SCHEDULED if row.send_at is not None and row.next_attempt_at == row.send_at
                    else Status.QUEUED, Status.SENDING) for row in rows])
    return rows


def _claim_without_returning(*, lane: str, limit: int, now: datetime) -> list[Message]:
    """For a database without UPDATE … RETURNING: each id its own conditional UPDATE, then one read."""
    due = _due(lane=lane, now=now).values_list("pk", flat=True)[:limit]
    won = [
        pk for pk in list(due)
        if _apply(Message.objects.filter(pk=pk, status__in=WAITING), Status.SENDING,
                  attempts=F("attempts") + 1, updated_at=now)
    ]
    return list(Message.objects.filter(pk__in=won))


def _due(*, lane: str | None = None, now: datetime):
    rows = Message.objects.filter(status__in=WAITING, next_attempt_at__lte=now)
    return rows.filter(lane=lane) if lane else rows


def next_due_at(*, lane: str) -> datetime | None:
    """When the lane's next waiting row is due (perhaps already): one look at `message_lane_due`."""
    return (Message.objects.filter(status__in=WAITING, lane=lane).order_by("next_attempt_at")
            .values_list("next_attempt_at", flat=True).first())


def lanes_with_due_messages(*, now: datetime | None = None) -> list[str]:
    """The lanes that have a message due now (the sweep wakes them)."""
    now = now or timezone.now()
    return sorted(set(_due(now=now).order_by().values_list("lane", flat=True).distinct()))


# --- the outcome of a claimed message -----------------------------------------------------

@dataclass(frozen=True)
class Sent:
    """What the backend handed back for one sent message, until the row records it."""

    message_id: object
    provider_message_id: str
    sent_via: str
    from_email: str
    attempt: int
    started_at: datetime
    sent_at: datetime = field(default_factory=timezone.now)
    provider: str = ""  # backends.providers: whose webhook events may change the row from now on


PER_ROW = ("sent_at", "provider_message_id", "sent_via", "from_email", "provider")


def record_sent(outcomes: Sequence[Sent]) -> int:
    """Mark every message of `outcomes` sent, with its own provider id, server and time, and
    record their attempts: one UPDATE and one INSERT, in one transaction.

    Only rows still `sending` move: a late write never takes a row back from a status it
    has since reached.
    """
    if not outcomes:
        return 0
    with transaction.atomic(savepoint=False):  # inside the drain's claim transaction: no savepoint
        return _record_sent(outcomes)


def _record_sent(outcomes: Sequence[Sent]) -> int:
    fields = {**said(None), "sealed_content": "", "updated_at": timezone.now()}
    for name in PER_ROW:
        values = {getattr(outcome, name) for outcome in outcomes}
        # One value for the batch (its server, its sender, nearly always) needs no CASE.
        fields[name] = values.pop() if len(values) == 1 else _per_row(outcomes, name)
    changed = _apply(Message.objects.filter(pk__in=[outcome.message_id for outcome in outcomes],
                                                 status=Status.SENDING), Status.SENT, **fields)
    if connection.vendor in UNNEST_VENDORS:
        _insert_sent_attempts(outcomes)
    else:
        DeliveryAttempt.objects.bulk_create([
            DeliveryAttempt(message_id=o.message_id, number=o.attempt, started_at=o.started_at,
                            finished_at=o.sent_at, outcome=DeliveryAttempt.Outcome.SENT, sent_via=o.sent_via)
            for o in outcomes
        ])
    return changed


def _insert_sent_attempts(outcomes: Sequence[Sent]) -> None:
    """The batch's attempts in one `INSERT … SELECT FROM unnest(arrays)` (PostgreSQL): five
    array parameters whatever the batch's size, and no model instance per row, where
    `bulk_create` builds fifty objects and binds 350 parameters."""
    meta = DeliveryAttempt._meta
    quote = connection.ops.quote_name
    col = {name: quote(meta.get_field(name).column)
           for name in ("message", "number", "started_at", "finished_at", "outcome", "error", "sent_via")}
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({col['message']}, {col['number']}, {col['started_at']}, "
        f"{col['finished_at']}, {col['outcome']}, {col['error']}, {col['sent_via']}) "
        "SELECT m, n, s, f, %s, '', v FROM unnest(%s::uuid[], %s::integer[], %s::timestamptz[], "
        "%s::timestamptz[], %s::text[]) AS a(m, n, s, f, v)"
    )
    params = [DeliveryAttempt.Outcome.SENT.value, [o.message_id for o in outcomes], [o.attempt for o in outcomes],
              [o.started_at for o in outcomes], [o.sent_at for o in outcomes], [o.sent_via for o in outcomes]]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _per_row(outcomes: Sequence, name: str, *, column: str | None = None) -> RawSQL:
    """`CASE id WHEN … THEN … END`: each row's own value of `name` (for the field `column`,
    by default the same name), for one UPDATE.

    Written as SQL with parameters rather than `Case(When(pk=…))`: building and resolving
    fifty `When` filters per column cost more than the UPDATE itself.
    """
    meta = Message._meta
    target = meta.get_field(column or name)
    params: list = []
    for outcome in outcomes:
        params += [meta.pk.get_db_prep_value(outcome.message_id, connection),
                   target.get_db_prep_value(getattr(outcome, name), connection)]
    whens = " ".join(["WHEN %s THEN %s"] * len(outcomes))
    return RawSQL(f"CASE {connection.ops.quote_name(meta.pk.column)} {whens} END", params, output_field=target)


@dataclass(frozen=True)
class Failure:
    """One failed attempt of a claimed message, as the retry policy decided it."""

    message_id: object
    attempt: int
    started_at: datetime
    error: str  # in English
    sent_via: str = ""  # what it was handed to, as a sent message's `sent_via`
    outcome: str = "permanent"  # a DeliveryAttempt.Outcome
    text: AuditText | None = None  # the error's code and parameters (`error` is its English sentence)

    @property
    def said(self) -> dict:
        """The message's error columns for this failure."""
        if self.text is None:
            return {**said(None), "error_message": clipped(self.error)}
        return said(self.text)


@transaction.atomic
def retry_later(failure: Failure, *, next_attempt_at: datetime) -> bool:
    """A transient failure with attempts left: back to `queued`, due at `next_attempt_at`."""
    changed = _apply(
        Message.objects.filter(pk=failure.message_id, status=Status.SENDING), Status.QUEUED,
        next_attempt_at=next_attempt_at, **failure.said, updated_at=timezone.now(),
    )
    _record_attempt(failure)
    return bool(changed)


@transaction.atomic
def fail(failure: Failure) -> bool:
    """A permanent failure, attempts spent, or an unknown outcome: `failed`, with the error."""
    changed = _apply(
        Message.objects.filter(pk=failure.message_id, status=Status.SENDING), Status.FAILED,
        **failure.said, sealed_content="", updated_at=timezone.now(),
    )
    _record_attempt(failure)
    return bool(changed)


@transaction.atomic
def expire_claimed(failure: Failure, *, reason: AuditText) -> bool:
    """A transient failure whose next try would fall past `OUTBOX_MAX_QUEUE_SECONDS`: `expired`."""
    changed = _apply(
        Message.objects.filter(pk=failure.message_id, status=Status.SENDING), Status.EXPIRED,
        **said(AuditText("expired_after_error", {"reason": reason, "error": failure.text or failure.error})),
        sealed_content="", updated_at=timezone.now(),
    )
    _record_attempt(failure)
    return bool(changed)


def _record_attempt(failure: Failure) -> None:
    DeliveryAttempt.objects.create(
        message_id=failure.message_id, number=failure.attempt, started_at=failure.started_at,
        finished_at=timezone.now(), outcome=failure.outcome, error=failure.error, sent_via=failure.sent_via,
        error_code=failure.text.code if failure.text else "",
        error_params=failure.text.as_data()["params"] if failure.text else None,
    )


def release(message_ids: Iterable, *, next_attempt_at: datetime, reason: AuditText | None = None) -> int:
    """Put claimed, unsent messages back to `queued`, their attempt not counted.

    For a server outage (nothing was tried on the message itself) and for a drain that
    reached its time bound before sending them.
    """
    ids = list(message_ids)
    if not ids:
        return 0
    fields = {"attempts": F("attempts") - 1, "next_attempt_at": next_attempt_at, "updated_at": timezone.now()}
    if reason is not None:
        fields.update(said(reason))
    return _apply(Message.objects.filter(pk__in=ids, status=Status.SENDING), Status.QUEUED, **fields)


def suppress_claimed(reasons: dict) -> int:
    """Claimed messages whose address was suppressed since they were queued: `suppressed`,
    never sent, their attempt not counted. `reasons` maps a message id to why (an `AuditText`)."""
    if not reasons:
        return 0
    now = timezone.now()
    with transaction.atomic(savepoint=False):
        return sum(
            _apply(Message.objects.filter(pk=pk, status=Status.SENDING), Status.SUPPRESSED,
                   attempts=F("attempts") - 1, next_attempt_at=None, sealed_content="",
                   **said(reason), updated_at=now)
            for pk, reason in reasons.items()
        )


# --- the sweep ----------------------------------------------------------------------------

def renew_leases(message_ids: Iterable) -> int:
    """A live drain still holds these claimed rows: their lease starts again now (`updated_at`),
    so the sweep never takes them from a worker that is slow but alive. Rows no longer
    `sending` (recorded, released) are left alone."""
    ids = list(message_ids)
    if not ids:
        return 0
    return Message.objects.filter(pk__in=ids, status=Status.SENDING).update(updated_at=timezone.now())


def release_expired_leases(*, now: datetime) -> int:
    """Rows left `sending` whose lease was not renewed for `OUTBOX_LEASE_SECONDS` (their
    worker died: a live one renews it, `core.outbox.leases`) go back to `queued`.

    Their attempt stays counted: the server may have taken the message before the worker
    died (at least once, never lost).
    """
    lease = now - timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)
    return _apply(
        Message.objects.filter(status=Status.SENDING, updated_at__lt=lease), Status.QUEUED,
        next_attempt_at=now, updated_at=now,
        **said(AuditText("released_by_sweep")),
    )


def expire_overdue(*, now: datetime) -> int:
    """Queued (or scheduled) messages still undelivered `OUTBOX_MAX_QUEUE_SECONDS` after they
    became due (their `send_at`, else their enqueue): `expired`."""
    became_due_before = now - timedelta(seconds=settings.OUTBOX_MAX_QUEUE_SECONDS)
    overdue = Message.objects.filter(status__in=WAITING).filter(
        Q(send_at__isnull=True, created_at__lt=became_due_before) | Q(send_at__lt=became_due_before)
    )
    return _apply(overdue, Status.EXPIRED, sealed_content="", updated_at=now, **said(expiry_reason()))


def expiry_reason() -> AuditText:
    seconds = settings.OUTBOX_MAX_QUEUE_SECONDS
    return AuditText("expired_overdue", {"seconds": int(seconds) if float(seconds).is_integer() else seconds})


# --- actions of people ---------------------------------------------------------------------

def cancel(message_id) -> Transition:
    """Cancel a scheduled or queued message: `cancelled`, never sent."""
    changed = _apply(
        Message.objects.filter(pk=message_id, status__in=WAITING), Status.CANCELLED,
        sealed_content="", updated_at=timezone.now(), **said(AuditText("cancelled")),
    )
    return _transition(message_id, changed)


def retry_now(message_ids: Iterable) -> int:
    """Staff retry failed or expired messages knowingly: back to `queued`, due now, with one
    more attempt allowed."""
    now = timezone.now()
    return _apply(
        Message.objects.filter(pk__in=list(message_ids), status__in=FINISHED_BADLY), Status.QUEUED,
        next_attempt_at=now, max_attempts=F("attempts") + 1, updated_at=now,
    )


# --- what providers (or the test-key simulator) report after `sent` ---------------------------

def mark_delivered(message_id, *, at: datetime) -> Transition:
    """`delivered`: from `sent`, or after a temporary bounce (soft bounces are often retried)."""
    changed = _apply(Message.objects.filter(pk=message_id).filter(
        Q(status=Status.SENT) | Q(status=Status.BOUNCED, bounce_type=BounceType.TEMPORARY)
    ), Status.DELIVERED, delivered_at=at, updated_at=timezone.now())
    return _transition(message_id, changed)


def mark_bounced(message_id, *, bounce_type: str, bounce_subtype: str = "") -> Transition:
    """`bounced`: never backwards (CONTRACT.md's order of strength)."""
    weaker = Q(status__in=(Status.SENT, Status.DELIVERED))
    if bounce_type == BounceType.PERMANENT:
        weaker |= Q(status=Status.BOUNCED, bounce_type=BounceType.TEMPORARY)
    changed = _apply(
        Message.objects.filter(pk=message_id).filter(weaker), Status.BOUNCED,
        bounce_type=bounce_type, bounce_subtype=bounce_subtype[:50], updated_at=timezone.now(),
    )
    return _transition(message_id, changed)


def mark_complaint(message_id) -> Transition:
    """`complaint`: as strong as a permanent bounce, so it does not replace one."""
    changed = _apply(Message.objects.filter(pk=message_id).filter(
        Q(status__in=(Status.SENT, Status.DELIVERED)) | Q(status=Status.BOUNCED, bounce_type=BounceType.TEMPORARY)
    ), Status.COMPLAINT, updated_at=timezone.now())
    return _transition(message_id, changed)


def mark_dropped(message_id, *, reason: AuditText) -> Transition:
    """`failed`: the provider took the message, then refused to send it (SendGrid's `dropped`).

    Only from `sent`: a drop is reported before any delivery, so a stronger status already
    reached is kept.
    """
    changed = Message.objects.filter(pk=message_id, status=Status.SENT).update(
        status=Status.FAILED, **said(reason), updated_at=timezone.now(),
    )
    return _transition(message_id, changed)


@dataclass(frozen=True)
class Report:
    """A provider's report about one sent message, for `apply_reports`.

    `kind` is `delivered`, `bounced`, `complaint` or `failed` (a drop: `reason`).
    """

    message_id: object
    kind: str
    at: datetime | None = None
    bounce_type: str = ""
    bounce_subtype: str = ""
    reason: AuditText | None = None

    @property
    def delivered_at(self) -> datetime | None:
        return self.at

    @property
    def trimmed_subtype(self) -> str:
        return self.bounce_subtype[:50]


def apply_reports(reports: Sequence[Report]) -> int:
    """Apply many messages' reports with one conditional UPDATE per kind of change (and per
    bounce type), whatever their number: a provider's batch of thousands of events costs a
    few statements, with the same guards (order of strength) as `mark_delivered`,
    `mark_bounced`, `mark_complaint` and `mark_dropped`.

    One report per message: the caller applies a message's several reports of one batch in
    their order, one at a time (`apply_report`), since their order decides the outcome.
    """
    now = timezone.now()
    changed = 0
    by_kind: dict[tuple[str, str], list[Report]] = {}
    for report in reports:
        by_kind.setdefault((report.kind, report.bounce_type if report.kind == "bounced" else ""), []).append(report)
    for (kind, bounce_type), group in by_kind.items():
        ids = [report.message_id for report in group]
        if kind == "delivered":
            changed += _apply(Message.objects.filter(pk__in=ids).filter(
                Q(status=Status.SENT) | Q(status=Status.BOUNCED, bounce_type=BounceType.TEMPORARY)
            ), Status.DELIVERED, delivered_at=_one_or_each(group, "delivered_at"), updated_at=now)
        elif kind == "bounced":
            weaker = Q(status__in=(Status.SENT, Status.DELIVERED))
            if bounce_type == BounceType.PERMANENT:
                weaker |= Q(status=Status.BOUNCED, bounce_type=BounceType.TEMPORARY)
            changed += _apply(Message.objects.filter(pk__in=ids).filter(weaker), Status.BOUNCED,
                              bounce_type=bounce_type, bounce_subtype=_one_or_each(group, "trimmed_subtype",
                                                                                   column="bounce_subtype"),
                              updated_at=now)
        elif kind == "complaint":
            changed += _apply(Message.objects.filter(pk__in=ids).filter(
                Q(status__in=(Status.SENT, Status.DELIVERED)) | Q(status=Status.BOUNCED, bounce_type=BounceType.TEMPORARY)
            ), Status.COMPLAINT, updated_at=now)
        elif kind == "failed":  # rare (a provider's drop), and each has its own reason: one UPDATE each
            for report in group:
                changed += _apply(Message.objects.filter(pk=report.message_id, status=Status.SENT),
                                  Status.FAILED, **said(report.reason), updated_at=now)
    return changed


def apply_report(report: Report) -> Transition:
    """One report, through the single-message transition of its kind."""
    if report.kind == "delivered":
        return mark_delivered(report.message_id, at=report.at or timezone.now())
    if report.kind == "bounced":
        return mark_bounced(report.message_id, bounce_type=report.bounce_type, bounce_subtype=report.bounce_subtype)
    if report.kind == "complaint":
        return mark_complaint(report.message_id)
    return mark_dropped(report.message_id, reason=report.reason or AuditText("dropped", {"provider": "?"}))


def _one_or_each(reports: Sequence[Report], name: str, *, column: str | None = None):
    values = {getattr(report, name) for report in reports}
    return values.pop() if len(values) == 1 else _per_row(reports, name, column=column)


def mark_simulated_sent(message_id, *, at: datetime, provider_message_id: str) -> Transition:
    """A test key's claimed message, accepted by the simulator instead of a backend."""
    changed = _apply(
        Message.objects.filter(pk=message_id, status=Status.SENDING), Status.SENT,
        sent_at=at, provider_message_id=provider_message_id, sealed_content="",
        **said(None), sent_via="simulator", provider="simulator", updated_at=timezone.now(),
    )
    return _transition(message_id, changed)


def _apply(rows, new: str, **fields) -> int:
    """`rows.update(status=new, **fields)`; announced after commit when someone listens.

    With a receiver of `message_status_changed`, the rows are first read and locked (their
    old status), then exactly those are updated: the locks keep them in the states `rows`
    selects until the UPDATE.
    """
    if not message_status_changed.has_listeners():
        return rows.update(status=new, **fields)
    with transaction.atomic(savepoint=False):
        before = dict(rows.select_for_update().order_by("pk").values_list("pk", "status"))  # one lock order
        if not before:
            return 0
        changed = Message.objects.filter(pk__in=list(before)).update(status=new, **fields)
        _announce([(pk, old, new) for pk, old in before.items()])
    return changed


def _announce(changes: list[tuple[object, str, str]]) -> None:
    """Send `message_status_changed` for each (id, old, new) once the transaction commits.

    The rows are read once, after commit, so a receiver sees the message as it is then;
    `signals.announce`: a receiver that raises is logged and stops neither the others nor
    the caller.
    """
    def send() -> None:
        messages = Message.objects.in_bulk([pk for pk, _, _ in changes])
        for pk, old, new in changes:
            if pk not in messages:
                continue
            announce(message_status_changed, sender=Message, about=f"for message {pk} ({old} → {new})",
                     message=messages[pk], old=old, new=new)

    if changes:
        transaction.on_commit(send)


def _transition(message_id, changed: int) -> Transition:
    if changed:
        return Transition(True, None)
    return Transition(False, Message.objects.filter(pk=message_id).values_list("status", flat=True).first())


def _db_time(value: datetime):
    return Message._meta.get_field("updated_at").get_db_prep_value(value, connection)


__all__ = [
    "Failure", "Report", "Sent", "Transition", "apply_report", "apply_reports", "cancel", "claim_due", "expire_claimed", "expire_overdue", "fail",
    "initial_fields", "lanes_with_due_messages", "said", "mark_bounced", "mark_complaint", "mark_delivered", "mark_dropped",
    "mark_simulated_sent", "record_sent", "release", "release_expired_leases", "retry_later", "retry_now",
    "suppress_claimed",
]
