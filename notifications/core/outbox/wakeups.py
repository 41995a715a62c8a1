"""Waking a lane's drain: the one module that publishes delivery work, by task name.

The table is the queue (`core.outbox.drain`); a task carries no message, only "lane X may
have due rows". Whatever makes rows of a lane due (a send's commit, a drain handing rows
back) wakes the lane AFTER that write commits, so the drain of the wake-up, which claims
after it starts, sees them. Every wake-up is taken by a drain that claims: none is skipped
on what a process remembers (the lost wake-up of issue 17 came from such shortcuts; see
docs/ARCHITECTURE.md, "Why no wake-up is lost").

With a Redis broker, at most one wake-up per lane waits in the broker at a time: publishing
sets a mark (`SET NX` with a short expiry) and a drain clears it before its first claim. The
mark is set only while a wake-up whose drain has not yet started is in the broker, so a
writer that finds it set, after its own commit, knows a claim will come after that commit.
A thousand independent sends then leave one or two wake-ups behind, not a thousand, and an
urgent wake-up never queues behind stale ones of its own lane. Without Redis (eager mode,
other brokers) every wake-up is published.

The broker is off the send's path once it is known to be down: a publish that fails marks it
down for this process, and from then on a wake-up is only remembered (`owed`), never tried
on the caller's thread; one prober thread per process tries the broker every
`BROKER_RECONNECT_MAX_SECONDS` and, once it answers, publishes what is owed. Workers also wake
every lane they consume each time they (re)connect (`config.celery`).

Tasks are published by name, so services never import `notifications.tasks`.
"""
from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Iterable

import redis
from celery import current_app
from django.conf import settings
from django.db import transaction
from kombu.exceptions import OperationalError

logger = logging.getLogger(__name__)

DRAIN_TASK = "notifications.drain_lane"
LANE_ORDER = {"urgent": 0, "default": 1, "bulk": 2}


# How long a mark may outlive a wake-up that was lost (a broker restarted without its data):
# meanwhile sends to the lane rely on the workers' wake-up at reconnection, or the sweep.
PENDING_MARK_SECONDS = 10
# A timer (the end of a rest, a retry's backoff, a scheduled time) fires this much after the rows
# it is for became due, so clocks a little apart never make it find them not yet due.
DELAY_MARGIN_SECONDS = 0.05
# The furthest ahead a timer is set; below Redis's visibility timeout (1 h), past which kombu
# would hand a waiting countdown to a second worker.
TIMER_HORIZON_SECONDS = 1800


def wake(lane: str, *, force: bool = False, retry: bool = False) -> bool:
    """Publish a drain of `lane` now, unless one is already waiting (`force`: publish anyway;
    the sweep and a reconnecting worker do). False when the broker is down: the wake-up is
    owed, and published by this process's prober once the broker answers.

    Call it after the write that made rows due has committed. No publish retries (`retry`:
    a few quick ones, only off any caller's thread: the prober, a worker reconnecting, whose
    pooled connection may be one the broker's restart broke), and no publish at all while the
    broker is known down: a send still answers at once.
    """
    if _broker.owe_if_down(lane, at=0.0):
        return False
    marks = _marks()
    key = _mark_key(lane)
    if marks is not None and not force:
        try:
            if not marks.set(key, "1", nx=True, px=PENDING_MARK_SECONDS * 1000):
                return True  # a wake-up is waiting and its drain has not started: it will see our rows
        except redis.RedisError:
            marks = None  # publish anyway
    if not _publish(lane, countdown=None, retry=retry):
        _clear(marks, key)
        return False
    return True


def wake_at(lane: str, *, at: float, retry: bool = False) -> bool:
    """Have `lane` drained at wall time `at` (epoch seconds), when rows of it become due by the
    clock alone: a retry's backoff passed, a scheduled time came, a lane's rest after an outage
    ended. One timer per lane waits in the broker (a Celery countdown), the earliest asked for:
    a later time is already covered, since the drain it runs arms the next one
    (`outbox`, at the end of every drain). Times past `TIMER_HORIZON_SECONDS` get a wake-up at
    the horizon, whose drain arms the next, so no countdown outlives Redis's visibility timeout.

    Only with a Redis broker (the timer's mark lives there); elsewhere the sweep wakes them.
    """
    marks = _marks()
    if marks is None:
        return False
    now = time.time()
    at = min(at, now + TIMER_HORIZON_SECONDS) + DELAY_MARGIN_SECONDS
    if _broker.owe_if_down(lane, at=at):
        return False
    delay = max(0.0, at - now)
    try:
        if not _earliest(keys=[_timer_key(lane)], args=[repr(at), max(1, int(delay * 1000))], client=marks):
            return True  # an earlier (or the same) timer is waiting
    except redis.RedisError:
        pass  # publish anyway
    if not _publish(lane, countdown=delay, retry=retry):
        _clear(marks, _timer_key(lane))
        return False
    return True


# Set the timer's mark to ARGV[1] (expiring with it) unless one as early is already set.
_EARLIEST = """
local current = redis.call('GET', KEYS[1])
if current and tonumber(current) <= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""


def _earliest(*, keys: list[str], args: list, client: redis.Redis) -> int:
    return client.eval(_EARLIEST, len(keys), *keys, *args)


def timers_available() -> bool:
    """Whether `wake_at` can set a lane's timer here (a Redis broker, not eager mode)."""
    return _marks() is not None


def taken(lane: str) -> bool:
    """A drain of `lane` is starting, before its first claim: the next write must wake the lane
    again. False when the mark could not be cleared: writers until it expires rely on a
    wake-up already taken, so the drain wakes the lane once more when it ends.

    Cleared even when this process thinks the broker down (a drain running says otherwise)."""
    return _clear(_marks(), _mark_key(lane))


def broker_is_back() -> None:
    """The broker answered (a worker reconnected to it): publish what this process owes now."""
    _broker.back()


def known_down() -> bool:
    """Whether this process knows the broker to be down (sends then never try it)."""
    return _broker.down


# Off a caller's thread only: a connection broken by a broker restart is replaced on the retry.
PATIENT_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}


def _publish(lane: str, *, countdown: float | None, retry: bool = False) -> bool:
    options = {"countdown": countdown} if countdown else {}
    if retry:
        options["retry_policy"] = PATIENT_RETRY
    try:
        current_app.signature(DRAIN_TASK, kwargs={"lane": lane}, queue=lane).apply_async(retry=retry, **options)
    except (OperationalError, OSError) as exc:
        _broker.went_down(lane, at=time.time() + (countdown or 0.0), error=exc)
        return False
    return True


class _BrokerState:
    """What this process knows of the broker: up, or down since a publish failed, with the lanes
    owed a wake-up (lane → the earliest time it is owed for) and the thread that probes it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.down = False
        self.owed: dict[str, float] = {}
        self.prober: threading.Thread | None = None

    def owe_if_down(self, lane: str, *, at: float) -> bool:
        """When the broker is known down, remember `lane` (due at `at`) and say so: nothing is tried."""
        if not self.down:  # read without the lock: a stale answer only costs one publish attempt
            return False
        with self.lock:
            if not self.down:
                return False
            self.owed[lane] = min(at, self.owed.get(lane, at))
            return True

    def went_down(self, lane: str, *, at: float, error: BaseException) -> None:
        with self.lock:
            self.owed[lane] = min(at, self.owed.get(lane, at))
            if self.down:
                return
            self.down = True
            self.prober = threading.Thread(target=self._probe, name="broker-prober", daemon=True)
            self.prober.start()
        logger.warning("The broker is unreachable (%s): sends no longer try it; the %s lane's wake-up is "
                       "published once it answers.", error, lane)

    def back(self) -> None:
        with self.lock:
            self.down, owed, self.owed = False, self.owed, {}
        if owed:
            logger.info("The broker answers again: waking %s.", ", ".join(sorted(owed)))
        now = time.time()
        for lane, at in sorted(owed.items(), key=lambda item: LANE_ORDER.get(item[0], 9)):
            if at > now:
                wake_at(lane, at=at, retry=True)
            else:
                wake(lane, force=True, retry=True)

    def _probe(self) -> None:
        """Until the broker answers: try it every `BROKER_RECONNECT_MAX_SECONDS`, off any caller's thread."""
        while True:
            time.sleep(reconnect_max_seconds())
            with self.lock:
                if not self.down or _broker is not self:
                    return
            try:
                with current_app.connection_for_write() as conn:
                    conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, interval_max=0,
                                         timeout=reconnect_max_seconds())
            except Exception:  # noqa: BLE001 - any failure means: not yet
                continue
            self.back()
            return


_broker = _BrokerState()


def reconnect_max_seconds() -> float:
    """The longest a process waits between two tries of a broker that is down (the setting)."""
    return max(0.1, float(settings.BROKER_RECONNECT_MAX_SECONDS))


def forget_broker_state() -> None:
    """Forget what this process knows of the broker (tests; a forked child, whose parent's
    prober thread does not exist in it). A prober still running finds itself replaced and stops."""
    global _broker
    _broker = _BrokerState()


os.register_at_fork(after_in_child=forget_broker_state)


def _mark_key(lane: str) -> str:
    return f"notifications:wake-pending:{lane}"


def _timer_key(lane: str) -> str:
    return f"notifications:wake-timer:{lane}"


def _clear(marks, key: str) -> bool:
    if marks is None:
        return True
    try:
        marks.delete(key)
    except redis.RedisError:
        logger.info("Could not clear the wake-up mark %s; it expires in %s s.", key, PENDING_MARK_SECONDS)
        return False
    return True


def _marks() -> redis.Redis | None:
    """A client of the Redis broker, or None: eager mode, or another broker."""
    conf = current_app.conf
    url = conf.broker_url or ""
    if conf.task_always_eager or not url.startswith(("redis://", "rediss://")):
        return None
    return _client(url)


@functools.lru_cache(maxsize=8)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)


def wake_on_commit(lanes: Iterable[str]) -> None:
    """Wake each of `lanes` once the current transaction commits, once per transaction.

    Nested calls in one transaction (a loop of `send_mail_template` inside `atomic()`) join
    the wake-up already registered, so a thousand sends in one transaction publish one
    task per lane.
    """
    lanes = set(lanes)
    if not lanes:
        return
    pending = _pending_wake_up()
    if pending is not None:
        pending.lanes |= lanes
        return
    transaction.on_commit(_WakeUp(lanes), robust=True)


class _WakeUp:
    """The on-commit callback of one transaction's wake-ups; urgent first."""

    def __init__(self, lanes: set[str]) -> None:
        self.lanes = lanes
        self.fired = False

    def __call__(self) -> None:
        self.fired = True
        for lane in sorted(self.lanes, key=lambda name: LANE_ORDER.get(name, 9)):
            wake(lane)


def _pending_wake_up() -> _WakeUp | None:
    """This transaction's wake-up callback, if one is registered (Django keeps them in
    `connection.run_on_commit` as `(savepoint ids, callback, robust)`)."""
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        return None
    for entry in connection.run_on_commit:
        if isinstance(entry[1], _WakeUp) and not entry[1].fired:  # fired: run early by a test's capture
            return entry[1]
    return None
