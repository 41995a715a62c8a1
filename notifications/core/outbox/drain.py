"""The outbox: a worker drains the due messages of its lane from the table, in batches.

A wake-up (`core.outbox.wakeups`) asks a worker to drain one lane. The drain claims up to
`OUTBOX_BATCH_SIZE` due rows of that lane (`_URGENT` on the urgent lane) in one
statement (`lifecycle.claim_due`), fewer when the lane's messages lately took so long here
that a full batch would overrun `OUTBOX_DRAIN_MAX_SECONDS` (`_Claim.limit`), sends them over the process's kept-open connection,
records the sent ones in one transaction per flush, and claims again while due rows
remain. Independent sends therefore batch themselves under load, and a lone message still
leaves at once. In a worker on PostgreSQL the sent ones are recorded by a thread with a
database connection of its own while the next batch is on the wire (`_Outcomes`), so the
database's time overlaps the SMTP exchanges; elsewhere (eager mode, SQLite, inside a
caller's transaction) the last batch's outcomes and the next claim share one commit.

A drain claims no new batch once it has run `OUTBOX_DRAIN_MAX_SECONDS`: it publishes a
wake-up for its lane and returns, so a worker serving several lanes gets to an urgent
wake-up quickly whatever the bulk backlog. A batch that overruns the bound by as much again
(a slow server) hands its unsent rest back, uncounted.

Every wake-up is taken by a drain that claims (none is skipped on what a process remembers),
and every write of a drain that makes rows of its lane due again wakes the lane after it
(a batch handed back, a batch claimed ahead and not sent) or sets the lane's timer (a retry's
backoff, a rest): so a due row always has a wake-up waiting or a drain that will claim it
(docs/ARCHITECTURE.md, "Why no wake-up is lost"). After an outage (no server reachable) the
lane rests for the retry backoff in every process (`core.health_state`): its batch went back
uncounted, due after the rest, and a wake-up taken meanwhile sets the lane's timer for the rest's end instead.

While a drain holds claimed rows, this process's lease keeper (`core.outbox.leases`) renews their
lease, so a slow server never lets the sweep hand them to another worker.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db import connections as db_connections
from django.utils import timezone

from notifications.audit_text import AuditText
from notifications.core import health_state
from notifications.models import Message, Lane

from notifications.core.outbox import leases
from notifications.core.outbox import lifecycle
from notifications.core.outbox.raw_sql import BACKGROUND_RECORDING_VENDORS
from notifications.core.outbox import retries
from notifications.policies import suppression
from notifications.core import tracking
from notifications.core.outbox import wakeups
from notifications.core import channels
from notifications.core.outbox.simulator import simulate

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0  # what a killed worker may send twice is at most this much
SENT, SIMULATED, RELEASED, RESTING = "sent", "simulated", "released", "resting"
SUPPRESSED = "suppressed"

_state_lock = threading.Lock()
_pace: dict[str, float] = {}  # lane -> seconds a message took to send, lately, in this process


def batch_size(lane: str) -> int:
    size = settings.OUTBOX_BATCH_SIZE_URGENT if lane == Lane.URGENT else settings.OUTBOX_BATCH_SIZE
    return max(1, int(size))


def drain_lane(*, lane: str) -> dict[str, int]:
    """Deliver the due messages of `lane`; returns counts by outcome.

    The wake-up's mark is cleared before the first claim, so a write committed from then on
    wakes the lane again, and a write committed before it is seen by that claim.
    """
    cleared = wakeups.taken(lane)
    try:
        return _drain(lane)
    finally:
        if not cleared:  # writers may have relied on the mark after this drain's last claim
            wakeups.wake(lane, force=True)


def _drain(lane: str) -> dict[str, int]:
    rest = health_state.rest_left(health_state.lane_key(lane))
    if rest > 0:
        wakeups.wake_at(lane, at=time.time() + rest)  # this wake-up's rows, once the rest is over
        return {RESTING: 1}
    bounded = not current_app.conf.task_always_eager  # eager (`make run`): the caller drains all
    bound = settings.OUTBOX_DRAIN_MAX_SECONDS if bounded else None
    claim = _Claim(lane=lane, size=batch_size(lane), leave_out=channels.claim_leaves_out(), bound=bound)
    try:
        with leases.held() as held:
            if bounded and _can_record_in_background():
                counts = _drain_overlapped(claim, held, bound=bound)
            else:
                counts = _drain_in_turn(claim, held, bound=bound)
    finally:
        channels.drain_ended()  # no connection slot outlives the drain that used it (caps)
    if counts.pop(_EMPTIED, 0):
        _arm_timer(lane)
    return counts


_EMPTIED = "_emptied"  # a drain's private count: it ended on a claim that came back short


def _arm_timer(lane: str) -> None:
    """After a drain took every due row of `lane`: the lane's timer for its next row due by the
    clock (a retry, a scheduled message, a batch released into a rest), if any."""
    if not bounded_drains() or not wakeups.timers_available():
        return  # eager mode, or no Redis broker: the sweep sees to them
    at = lifecycle.next_due_at(lane=lane)
    if at is not None:
        wakeups.wake_at(lane, at=at.timestamp())


def bounded_drains() -> bool:
    return not current_app.conf.task_always_eager


@dataclass(frozen=True)
class _Claim:
    """What a drain claims: up to `size` due rows of `lane`, and no more than it can send within
    its time `bound` at the pace messages of the lane lately took in this process (a slow
    server: a smaller batch rather than one whose rest is handed back); `leave_out`: the
    columns no channel's delivery needs at claim (`channels.claim_leaves_out`), which each
    channel loads back for the rows that need them (`channels.prepare_claimed`)."""

    lane: str
    size: int
    leave_out: frozenset[str] = frozenset()
    bound: float | None = None

    def limit(self) -> int:
        with _state_lock:
            pace = _pace.get(self.lane)
        if not self.bound or not pace:
            return self.size
        return max(1, min(self.size, int(self.bound / pace)))

    def __call__(self, held: leases.Held) -> tuple[list[Message], dict, int]:
        """(rows, the suppressed ones among them → why, how many were asked for); in the caller's
        transaction. The rows are `held` (their lease renewed) from the claim on."""
        limit = self.limit()
        rows = lifecycle.claim_due(lane=self.lane, limit=limit, leave_out=self.leave_out)
        held.add(row.pk for row in rows)
        channels.prepare_claimed(rows, left_out=self.leave_out)
        # Addresses suppressed since these rows were queued: one query.
        return rows, (suppression.held_back(rows) if rows else {}), limit

    @staticmethod
    def came_back_short(rows: list, limit: int) -> bool:
        """Whether the claim took every row of the lane due, committed and not claimed by
        another drain when it started."""
        return len(rows) < limit


def _drain_in_turn(claim: _Claim, held: leases.Held, *, bound: float | None) -> dict[str, int]:
    """Claim, send, record, one after the other on this connection: the last batch's outcomes
    and the next claim share one commit. `bound` None: until the lane is empty (eager)."""
    counts: Counter = Counter()
    deadline = time.monotonic() + (bound or 0.0)
    outcomes = _Outcomes(_record)
    try:
        while True:
            with transaction.atomic(savepoint=False):  # the last batch's outcomes, the claim, its check: one commit
                outcomes.flush()
                rows, suppressed, limit = claim(held)
            short = claim.came_back_short(rows, limit)
            if not rows:
                counts[_EMPTIED] = 1
                break
            # A batch started before the bound is finished unless it overruns it by another
            # bound (a slow server): handing rows back costs a write, so it is the exception.
            stopped = _deliver_batch(claim.lane, rows, suppressed, counts, outcomes,
                                     release_after=deadline + bound if bound is not None else None)
            if stopped:
                break
            if short:
                counts[_EMPTIED] = 1
                break
            if bound is not None and time.monotonic() >= deadline:
                wakeups.wake(claim.lane)  # the time bound: the lane is handed back
                break
    finally:
        # Whatever stopped the drain, what the servers accepted is recorded.
        outcomes.flush()
    return dict(counts)


def _drain_overlapped(claim: _Claim, held: leases.Held, *, bound: float) -> dict[str, int]:
    """A worker's drain on PostgreSQL: the database's work runs in this process's recorder
    thread, on a connection of its own, while the batch before is on the wire.

    While batch k is sent, the recorder writes batch k-1's outcomes and claims batch k+1
    in one transaction (one commit), so the SMTP connection never waits for the database:
    an UPDATE and an INSERT of the outcomes, the look for early events, the claim, the
    suppression check. One job at a time, in order: outcomes are recorded in the order
    they were sent, and what a killed worker leaves unrecorded is about one batch (its rows
    stay `sending`, as while a batch is on the wire, and the sweep releases them after
    their lease). A batch is claimed ahead only when the one being sent, taking as long as
    the last, would end before the time bound. A batch claimed ahead but not sent (an outage, the bound overrun, an error) goes
    back to `queued` uncounted, and the lane is woken after that write. An error of the
    recorder is raised here, at the next hand-over or at the end.
    """
    counts: Counter = Counter()
    deadline = time.monotonic() + bound
    recorder = _Background()
    outcomes = _Outcomes(recorder.record)
    recorder.submit([], claim, held)
    batch_seconds = 0.0
    try:
        while True:
            rows, suppressed, limit = recorder.take_claimed()
            short = claim.came_back_short(rows, limit)
            if not rows:
                counts[_EMPTIED] = 1
                break
            batch_started = time.monotonic()
            ahead = not short and batch_started + batch_seconds < deadline
            recorder.submit(outcomes.take(), claim if ahead else None, held)
            stopped = _deliver_batch(claim.lane, rows, suppressed, counts, outcomes, release_after=deadline + bound)
            batch_seconds = time.monotonic() - batch_started
            if stopped:
                break
            if short:
                counts[_EMPTIED] = 1
                break
            if not ahead:
                wakeups.wake(claim.lane)  # the time bound: the lane is handed back
                break
    finally:
        try:
            recorder.submit(outcomes.take(), None, held)
            recorder.settle()
        finally:
            _release_claimed_ahead(claim.lane, recorder, counts)  # after an error too: nothing stays claimed
    return dict(counts)


def _release_claimed_ahead(lane: str, recorder: _Background, counts: Counter) -> None:
    """Hand back a batch claimed ahead and not sent: uncounted, due when the lane's rest ends,
    and the lane woken (or its timer set) after that write, whoever took the last wake-up."""
    recorder.settle()
    rows, _, _ = recorder.claimed or ([], {}, 0)
    recorder.claimed = None
    if not rows:
        return
    rest = health_state.rest_left(health_state.lane_key(lane))
    counts[RELEASED] += lifecycle.release([row.pk for row in rows],
                                          next_attempt_at=timezone.now() + timedelta(seconds=rest))
    _wake_for_released(lane, rest=rest)


def _wake_for_released(lane: str, *, rest: float) -> None:
    """After rows of `lane` went back to `queued`, due now or after `rest` seconds."""
    if rest > 0:
        wakeups.wake_at(lane, at=time.time() + rest)
    else:
        wakeups.wake(lane)


class _Outcomes:
    """Sent messages not yet recorded: handed to `write` with the next claim, or at least every
    `FLUSH_SECONDS`, so a killed worker leaves little to be sent twice."""

    def __init__(self, write) -> None:
        self.write = write
        self.pending: list[lifecycle.Sent] = []
        self.recorded_at = time.monotonic()

    def add(self, outcome: lifecycle.Sent) -> None:
        self.pending.append(outcome)
        if time.monotonic() - self.recorded_at >= FLUSH_SECONDS:
            self.flush()

    def take(self) -> list[lifecycle.Sent]:
        pending, self.pending, self.recorded_at = self.pending, [], time.monotonic()
        return pending

    def flush(self) -> None:
        self.write(self.take())


def _record(pending: list[lifecycle.Sent]) -> None:
    if not pending:
        return
    with transaction.atomic(savepoint=False):  # one commit (or the claim's, in turn)
        lifecycle.record_sent(pending)
        tracking.apply_pending(outcome.message_id for outcome in pending)  # events that came first


class _Background:
    """One drain's jobs in the recorder thread: at most one in flight, and the batch it claimed."""

    def __init__(self) -> None:
        self.in_flight: Future | None = None
        self.claimed: tuple[list[Message], dict, int] | None = None

    def submit(self, pending: list[lifecycle.Sent], claim: _Claim | None, held: leases.Held | None = None) -> None:
        """Record `pending` and, with `claim`, claim the next batch (`held` from then on): one
        transaction, after the job in flight (waited for: one at a time)."""
        self.settle()
        if pending or claim is not None:
            self.in_flight = _recorder().submit(_record_and_claim, pending, claim, held)

    def record(self, pending: list[lifecycle.Sent]) -> None:
        """A flush in the middle of a batch: outcomes only."""
        self.submit(pending, None)

    def settle(self) -> None:
        """Wait for the job in flight; raises what it raised."""
        future, self.in_flight = self.in_flight, None
        if future is not None:
            claimed = future.result()
            if claimed is not None:
                self.claimed = claimed

    def take_claimed(self) -> tuple[list[Message], dict, int]:
        self.settle()
        claimed, self.claimed = self.claimed, None
        return claimed or ([], {}, 1)  # (none: every submit but the last claims)


def _record_and_claim(pending: list[lifecycle.Sent], claim: _Claim | None, held: leases.Held | None):
    """In the recorder thread, whose connection Django keeps apart from the drain's."""
    close_old_connections()  # one that broke or outlived CONN_MAX_AGE is replaced
    with transaction.atomic(savepoint=False):
        _record(pending)
        return claim(held) if claim is not None else None


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
    lane: str, rows: list[Message], suppressed: dict, counts: Counter, outcomes: _Outcomes, *,
    release_after: float | None,
) -> bool:
    """Send one claimed batch in due order; True when the drain must stop (outage, time bound).

    Past `release_after` the unsent rest goes back to `queued` (uncounted) and the lane is
    woken again, after that write; the first message is always sent, so the lane moves
    whatever the bound.
    """
    if suppressed:  # `suppression.held_back(rows)`: never sent
        counts[SUPPRESSED] += lifecycle.suppress_claimed(suppressed)
        rows = [row for row in rows if row.pk not in suppressed]
    # Grouped by channel (each row goes to its own), in due order within each.
    rows.sort(key=lambda row: (row.channel, row.next_attempt_at or row.created_at, row.created_at))
    width = concurrency()
    if width > 1 and len(rows) > 1:
        return _deliver_in_flight(lane, rows, counts, outcomes, release_after=release_after, width=width)
    sent_seconds, sent = 0.0, 0
    for index, message in enumerate(rows):
        if index and release_after is not None and time.monotonic() >= release_after:
            counts[RELEASED] += lifecycle.release([row.pk for row in rows[index:]], next_attempt_at=timezone.now())
            wakeups.wake(lane)
            return True
        started_at, started = timezone.now(), time.monotonic()
        channel = None
        try:
            channel = channels.for_row(message)
            if message.is_test:
                simulate(message, channel=channel)  # a failure address raises here, as a provider would
                counts[SIMULATED] += 1
                continue
            outcome = channel.deliver(message)
        except Exception as exc:  # noqa: BLE001 - every provider error goes to the retry policy
            try:
                counts[retries.settle_failure(message, _classified(channel, message, exc), started_at=started_at)] += 1
            except retries.OutageError as outage:
                if message.is_test:  # a test key's simulated outage never holds back real mail
                    counts[RELEASED] += retries.release_simulated_outage(message, outage)
                    continue
                counts[RELEASED] += _rest_after_outage(lane, rows[index:], outage)
                return True
            continue
        sent_seconds, sent = sent_seconds + time.monotonic() - started, sent + 1
        _keep_pace(lane, sent_seconds, sent)
        outcomes.add(outcome)
        counts[SENT] += 1
    health_state.clear_outages(health_state.lane_key(lane))
    return False


def concurrency() -> int:
    """How many messages this process sends at once (`OUTBOX_CONCURRENCY`, at least 1)."""
    return max(1, int(getattr(settings, "OUTBOX_CONCURRENCY", 1) or 1))


def _deliver_in_flight(
    lane: str, rows: list[Message], counts: Counter, outcomes: _Outcomes, *, release_after: float | None, width: int,
) -> bool:
    """`_deliver_batch` with up to `width` messages in flight: the sending threads
    (`_senders`) only hand rows to their providers; this thread settles every result, in due
    order, so the retry policy, the outcomes and the counts are written as one at a time.

    An outage stops new sends; those in flight finish (what was taken is recorded, what failed
    is settled), then the unsent rest and the in-flight rows that met the outage go back
    uncounted. A DATA timeout on one connection fails that row alone (outcome unknown).
    """
    pool = _senders(width)
    in_flight: deque = deque()
    started, sent, index = time.monotonic(), 0, 0
    outage: retries.OutageError | None = None
    unsent: list[Message] = []
    while index < len(rows) or in_flight:
        while outage is None and index < len(rows) and len(in_flight) < width:
            if index and release_after is not None and time.monotonic() >= release_after:
                break
            message = rows[index]
            index += 1
            if message.is_test:  # simulated here: its outcome is written like a webhook's
                in_flight.append((message, timezone.now(), _done(_simulate, message)))
            else:
                in_flight.append((message, timezone.now(), pool.submit(_hand_over, message)))
        if not in_flight:
            break
        message, started_at, future = in_flight.popleft()
        try:
            outcome = future.result()
        except Exception as exc:  # noqa: BLE001 - every provider error goes to the retry policy
            if outage is not None:
                kind = _classified(_channel_or_none(message), message, exc).kind
                if kind is channels.ErrorClass.OUTAGE:
                    unsent.append(message)
                    continue
            try:
                counts[retries.settle_failure(message, _classified(_channel_or_none(message), message, exc),
                                              started_at=started_at)] += 1
            except retries.OutageError as found:
                if message.is_test:
                    counts[RELEASED] += retries.release_simulated_outage(message, found)
                    continue
                outage = found
                unsent.append(message)
            continue
        if outcome is None:
            counts[SIMULATED] += 1
            continue
        sent += 1
        _keep_pace(lane, time.monotonic() - started, sent)
        outcomes.add(outcome)
        counts[SENT] += 1
    if outage is not None:
        counts[RELEASED] += _rest_after_outage(lane, unsent + rows[index:], outage)
        return True
    if index < len(rows):  # the time bound: the unsent rest goes back
        counts[RELEASED] += lifecycle.release([row.pk for row in rows[index:]], next_attempt_at=timezone.now())
        wakeups.wake(lane)
        return True
    health_state.clear_outages(health_state.lane_key(lane))
    return False


def _hand_over(message: Message):
    """In a sending thread: hand one row to its channel's provider (no database write)."""
    return channels.for_row(message).deliver(message)


def _simulate(message: Message) -> None:
    simulate(message, channel=channels.for_row(message))


def _done(call, message) -> Future:
    """`call(message)` run here, as a finished future (a test key's row: written in this thread)."""
    future: Future = Future()
    try:
        future.set_result(call(message))
    except Exception as exc:  # noqa: BLE001 - settled like a provider's error
        future.set_exception(exc)
    return future


def _channel_or_none(message: Message) -> channels.Channel | None:
    try:
        return channels.for_row(message)
    except Exception:  # noqa: BLE001 - a channel this process lacks: `_classified` says so
        return None


_senders_lock = threading.Lock()
_senders_pool: ThreadPoolExecutor | None = None


def _senders(width: int) -> ThreadPoolExecutor:
    """This process's sending threads, `width` of them (rebuilt when the setting changes)."""
    global _senders_pool
    with _senders_lock:
        if _senders_pool is None or _senders_pool._max_workers != width:
            if _senders_pool is not None:
                _senders_pool.shutdown(wait=True)
            _senders_pool = ThreadPoolExecutor(max_workers=width, thread_name_prefix="notifications-sender")
        return _senders_pool


def _forget_senders_in_child() -> None:
    global _senders_pool, _senders_lock
    _senders_pool, _senders_lock = None, threading.Lock()  # the parent's threads do not exist here


os.register_at_fork(after_in_child=_forget_senders_in_child)


def _classified(channel: channels.Channel | None, message, exc: BaseException) -> channels.ClassifiedError:
    """The class of a delivery's error: the channel's (its provider's) verdict. A row whose
    channel this process has not registered was not attempted: an outage, so the row goes
    back uncounted for a worker that has it, and the reason names the setting to fix."""
    if channel is not None:
        return channel.classify(exc)
    why = AuditText("channel_not_configured", {"channel": message.channel, "setting": channels.SETTING})
    return channels.ClassifiedError(kind=channels.ErrorClass.OUTAGE, text=why, reason=why)


def _keep_pace(lane: str, seconds: float, sent: int) -> None:
    """Remember how long a message of `lane` takes to send here: this batch's mean so far,
    weighed with what came before."""
    mean = seconds / sent
    with _state_lock:
        before = _pace.get(lane)
        _pace[lane] = mean if before is None else (before + mean) / 2


def _rest_after_outage(lane: str, unsent: list[Message], outage: retries.OutageError) -> int:
    delay = retries.outage_delay(health_state.count_outage(health_state.lane_key(lane)))
    health_state.rest(health_state.lane_key(lane), seconds=delay)
    released = lifecycle.release(
        [row.pk for row in unsent], next_attempt_at=timezone.now() + timedelta(seconds=delay), reason=outage.reason
    )
    _wake_for_released(lane, rest=delay)
    logger.warning("Outage on the %s lane: %d messages put back uncounted; resting %.3f s. %s",
                   lane, released, delay, outage.reason)
    return released


def forget_process_state() -> None:
    """Forget what this process knows of its lanes (tests; a worker process starting)."""
    with _state_lock:
        _pace.clear()
    health_state.forget_local_state()


__all__ = ["batch_size", "close_recorder", "concurrency", "drain_lane", "forget_process_state"]
