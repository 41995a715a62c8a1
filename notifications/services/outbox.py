"""The outbox: a worker drains the due messages of its lane from the table, in batches.

A wake-up (`services.wakeups`) asks a worker to drain one lane. The drain claims up to
`EMAIL_DELIVERY_BATCH_SIZE` due rows of that lane (`_URGENT` on the urgent lane) in one
statement (`lifecycle.claim_due`), sends them over the process's kept-open connection,
records the sent ones in one transaction per flush, and claims again while due rows
remain. Independent sends therefore batch themselves under load, and a lone message still
leaves at once.

A drain claims no new batch once it has run `EMAIL_DRAIN_MAX_SECONDS`: it publishes a
wake-up for its lane and returns, so a worker serving several lanes gets to an urgent
wake-up quickly whatever the bulk backlog. A batch that overruns the bound by as much again
(a slow server) hands its unsent rest back, uncounted.

Two process-local facts save work. When a claim came back short, every row due at that
moment was taken: a wake-up published before it finds nothing and is skipped without a
query. And after an outage (no server reachable), the lane rests for the retry backoff:
its batch went back uncounted, due after the rest, and wake-ups meanwhile are skipped;
the sweep wakes the lane again.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from notifications.models import EmailMessage, Lane

from . import lifecycle, retries, suppression, tracking, wakeups
from .delivery import send_claimed, sends_prebuilt
from .simulator import simulate

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0  # what a killed worker may send twice is at most this much
# `woken_at` is the publisher's clock, `_drained_at` this worker's: a wake-up is skipped only
# when the lane was found empty this long after it was published, so hosts whose clocks
# differ by less never skip one they should not (the sweep would still wake the lane).
CLOCK_SKEW_ALLOWANCE = 0.05
SENT, SIMULATED, RELEASED, SKIPPED, RESTING = "sent", "simulated", "released", "skipped", "resting"
SUPPRESSED = "suppressed"

_state_lock = threading.Lock()
_drained_at: dict[str, float] = {}  # lane -> wall time of the last claim that came back short
_resting_until: dict[str, float] = {}  # lane -> monotonic end of the rest after an outage
_outages: Counter = Counter()  # lane -> outages in a row


def batch_size(lane: str) -> int:
    size = settings.EMAIL_DELIVERY_BATCH_SIZE_URGENT if lane == Lane.URGENT else settings.EMAIL_DELIVERY_BATCH_SIZE
    return max(1, int(size))


def drain_lane(*, lane: str, woken_at: float | None = None) -> dict[str, int]:
    """Deliver the due messages of `lane`; returns counts by outcome.

    `woken_at` is when the wake-up was published: a drain of this process that claimed
    short after that moment has already taken everything it could mean.
    """
    counts: Counter = Counter()
    wakeups.taken(lane)  # before the claim: a send committed from now on wakes the lane again
    with _state_lock:
        if woken_at is not None and _drained_at.get(lane, 0.0) > woken_at + CLOCK_SKEW_ALLOWANCE:
            return {SKIPPED: 1}
        if _resting_until.get(lane, 0.0) > time.monotonic():
            return {RESTING: 1}
    bounded = not current_app.conf.task_always_eager  # eager (`make run`): the caller drains all
    bound = settings.EMAIL_DRAIN_MAX_SECONDS
    deadline = time.monotonic() + bound
    size = batch_size(lane)
    prebuilt = sends_prebuilt()  # the claim leaves out what this backend will not read
    outcomes = _Outcomes()
    try:
        while True:
            claim_started = time.time()
            with transaction.atomic(savepoint=False):  # the last batch's outcomes and the next claim: one commit
                outcomes.record()
                rows = lifecycle.claim_due(lane=lane, limit=size, prebuilt=prebuilt)
            short = len(rows) < size
            if short:
                with _state_lock:
                    _drained_at[lane] = max(_drained_at.get(lane, 0.0), claim_started)
            if not rows:
                break
            # A batch started before the bound is finished unless it overruns it by another
            # bound (a slow server): handing rows back costs a write, so it is the exception.
            stopped = _deliver_batch(lane, rows, counts, outcomes, release_after=deadline + bound if bounded else None)
            if stopped or short:
                break
            if bounded and time.monotonic() >= deadline:
                wakeups.wake(lane)
                break
    finally:
        # Whatever stopped the drain, what the servers accepted is recorded.
        outcomes.record()
    return dict(counts)


class _Outcomes:
    """Sent messages not yet recorded: written with the next claim, or at least every
    `FLUSH_SECONDS`, so a killed worker leaves little to be sent twice."""

    def __init__(self) -> None:
        self.pending: list[lifecycle.Sent] = []
        self.recorded_at = time.monotonic()

    def add(self, outcome: lifecycle.Sent) -> None:
        self.pending.append(outcome)
        if time.monotonic() - self.recorded_at >= FLUSH_SECONDS:
            self.record()

    def record(self) -> None:
        pending, self.pending, self.recorded_at = self.pending, [], time.monotonic()
        lifecycle.record_sent(pending)
        tracking.apply_pending(outcome.message_id for outcome in pending)  # events that came first


def _deliver_batch(
    lane: str, rows: list[EmailMessage], counts: Counter, outcomes: _Outcomes, *, release_after: float | None
) -> bool:
    """Send one claimed batch in due order; True when the drain must stop (outage, time bound).

    Past `release_after` the unsent rest goes back to `queued` (uncounted) and the lane is
    woken again; the first message is always sent, so the lane moves whatever the bound.
    """
    held = suppression.held_back(rows)  # addresses suppressed since these were queued: one query
    if held:
        counts[SUPPRESSED] += lifecycle.suppress_claimed(held)
        rows = [row for row in rows if row.pk not in held]
    rows.sort(key=lambda row: (row.next_attempt_at or row.created_at, row.created_at))
    for index, message in enumerate(rows):
        if index and release_after is not None and time.monotonic() >= release_after:
            counts[RELEASED] += lifecycle.release([row.pk for row in rows[index:]], next_attempt_at=timezone.now())
            wakeups.wake(lane)
            return True
        if message.is_test:
            simulate(message)
            counts[SIMULATED] += 1
            continue
        started_at = timezone.now()
        try:
            outcome = send_claimed(message)
        except Exception as exc:  # noqa: BLE001 - every backend error goes to the retry policy
            try:
                counts[retries.settle_failure(message, exc, started_at=started_at)] += 1
            except retries.OutageError as outage:
                counts[RELEASED] += _rest_after_outage(lane, rows[index:], outage)
                return True
            continue
        outcomes.add(outcome)
        counts[SENT] += 1
    with _state_lock:
        _outages.pop(lane, None)
    return False


def _rest_after_outage(lane: str, unsent: list[EmailMessage], outage: retries.OutageError) -> int:
    with _state_lock:
        _outages[lane] += 1
        delay = retries.outage_delay(_outages[lane])
        _resting_until[lane] = time.monotonic() + delay
    released = lifecycle.release(
        [row.pk for row in unsent], next_attempt_at=timezone.now() + timedelta(seconds=delay), reason=outage.reason
    )
    logger.warning("Outage on the %s lane: %d messages put back uncounted; resting %.3f s. %s",
                   lane, released, delay, outage.reason)
    return released


def forget_process_state() -> None:
    """Forget what this process knows of its lanes (tests; a worker process starting)."""
    with _state_lock:
        _drained_at.clear()
        _resting_until.clear()
        _outages.clear()


__all__ = ["batch_size", "drain_lane", "forget_process_state"]
