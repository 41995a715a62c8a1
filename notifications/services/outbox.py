"""The outbox: a worker drains the due messages of its lane from the table, in batches.

A wake-up (`services.wakeups`) asks a worker to drain one lane. The drain claims up to
`EMAIL_DELIVERY_BATCH_SIZE` due rows of that lane (`_URGENT` on the urgent lane) in one
statement (`lifecycle.claim_due`), sends them over the process's kept-open connection,
records the sent ones in one transaction per flush, and claims again while due rows
remain. Independent sends therefore batch themselves under load, and a lone message still
leaves at once. In a worker on PostgreSQL the sent ones are recorded by a thread with a
database connection of its own while the next batch is on the wire (`_Outcomes`), so the
database's time overlaps the SMTP exchanges; elsewhere (eager mode, SQLite, inside a
caller's transaction) the last batch's outcomes and the next claim share one commit.

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
import os
import threading
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db import connections as db_connections
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
BACKGROUND_RECORDING_VENDORS = {"postgresql"}

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
    outcomes = _Outcomes(background=bounded and _can_record_in_background())
    try:
        while True:
            claim_started = time.time()
            if outcomes.background:
                outcomes.record()  # handed to the recorder: written while this batch is on the wire
            with transaction.atomic(savepoint=False):  # (the last batch's outcomes,) the claim, its check: one commit
                if not outcomes.background:
                    outcomes.record()
                rows = lifecycle.claim_due(lane=lane, limit=size, prebuilt=prebuilt)
                # Addresses suppressed since these rows were queued: one query.
                held = suppression.held_back(rows) if rows else {}
            short = len(rows) < size
            if short:
                with _state_lock:
                    _drained_at[lane] = max(_drained_at.get(lane, 0.0), claim_started)
            if not rows:
                break
            # A batch started before the bound is finished unless it overruns it by another
            # bound (a slow server): handing rows back costs a write, so it is the exception.
            stopped = _deliver_batch(lane, rows, held, counts, outcomes,
                                     release_after=deadline + bound if bounded else None)
            if stopped or short:
                break
            if bounded and time.monotonic() >= deadline:
                wakeups.wake(lane)
                break
    finally:
        # Whatever stopped the drain, what the servers accepted is recorded before it returns.
        outcomes.record(wait=True)
    return dict(counts)


class _Outcomes:
    """Sent messages not yet recorded: written with the next claim, or at least every
    `FLUSH_SECONDS`, so a killed worker leaves little to be sent twice.

    `background`: written by this process's recorder thread on a database connection of its
    own, while the drain claims and sends the next batch, so the database's time (an UPDATE
    and an INSERT of the batch, the look for early events, the commit) overlaps the SMTP
    exchanges instead of adding to them. One write at a time, in order: a batch's outcomes
    are handed over only once the previous batch's are committed (so what a killed worker
    leaves unrecorded stays about one batch), and an error of the recorder is raised here,
    at the next hand-over or at the end of the drain. Rows not yet recorded stay `sending`,
    as they do while a batch is on the wire: the sweep releases them after their lease.
    """

    def __init__(self, *, background: bool = False) -> None:
        self.pending: list[lifecycle.Sent] = []
        self.recorded_at = time.monotonic()
        self.background = background
        self.in_flight: Future | None = None

    def add(self, outcome: lifecycle.Sent) -> None:
        self.pending.append(outcome)
        if time.monotonic() - self.recorded_at >= FLUSH_SECONDS:
            self.record()

    def record(self, *, wait: bool = False) -> None:
        pending, self.pending, self.recorded_at = self.pending, [], time.monotonic()
        if not self.background:
            _record(pending)
            return
        self._settle()
        if pending:
            self.in_flight = _recorder().submit(_record_on_own_connection, pending)
        if wait:
            self._settle()

    def _settle(self) -> None:
        """Wait for the write in flight; raises what it raised."""
        future, self.in_flight = self.in_flight, None
        if future is not None:
            future.result()


def _record(pending: list[lifecycle.Sent]) -> None:
    if not pending:
        return
    with transaction.atomic(savepoint=False):  # one commit (inside the claim's transaction when not in background)
        lifecycle.record_sent(pending)
        tracking.apply_pending(outcome.message_id for outcome in pending)  # events that came first


def _record_on_own_connection(pending: list[lifecycle.Sent]) -> None:
    """In the recorder thread, whose connection Django keeps apart from the drain's."""
    close_old_connections()  # one that broke or outlived CONN_MAX_AGE is replaced
    _record(pending)


_recorder_lock = threading.Lock()
_recorder_pool: ThreadPoolExecutor | None = None


def _recorder() -> ThreadPoolExecutor:
    """This process's recorder: one thread, so writes keep their order; made on first use."""
    global _recorder_pool
    with _recorder_lock:
        if _recorder_pool is None:
            _recorder_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox-recorder")
        return _recorder_pool


def close_recorder() -> None:
    """Stop this process's recorder thread, closing its database connection (tests; it is
    made again on the next drain that needs it)."""
    global _recorder_pool
    with _recorder_lock:
        pool, _recorder_pool = _recorder_pool, None
    if pool is not None:
        try:
            pool.submit(db_connections.close_all).result(timeout=10)
        except Exception:  # noqa: BLE001 - a connection being discarded may fail in any way
            logger.debug("Closing the outbox recorder's database connection failed.", exc_info=True)
        pool.shutdown(wait=False)


def _can_record_in_background() -> bool:
    """PostgreSQL (many connections write at once), and no transaction of the caller's open:
    rows written in it (a test's) would be invisible to the recorder's connection."""
    return connection.vendor in BACKGROUND_RECORDING_VENDORS and not connection.in_atomic_block


def _forget_recorder_in_child() -> None:
    global _recorder_pool, _recorder_lock
    _recorder_pool, _recorder_lock = None, threading.Lock()  # the parent's thread does not exist here


os.register_at_fork(after_in_child=_forget_recorder_in_child)


def _deliver_batch(
    lane: str, rows: list[EmailMessage], held: dict, counts: Counter, outcomes: _Outcomes, *,
    release_after: float | None,
) -> bool:
    """Send one claimed batch in due order; True when the drain must stop (outage, time bound).

    Past `release_after` the unsent rest goes back to `queued` (uncounted) and the lane is
    woken again; the first message is always sent, so the lane moves whatever the bound.
    """
    if held:  # `suppression.held_back(rows)`: never sent
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


__all__ = ["batch_size", "close_recorder", "drain_lane", "forget_process_state"]
