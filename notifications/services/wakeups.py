"""Waking a lane's drain: the one module that publishes delivery work, by task name.

The table is the queue (`services.outbox`); a task carries no message, only "lane X may
have due rows since time T". A send publishes at most one wake-up per lane per
transaction, after it commits; a duplicate or late wake-up finds nothing, and when the
worker has already drained the lane since T it costs no query at all.

With a Redis broker, at most one wake-up per lane waits in the broker at a time: publishing
sets a mark (`SET NX` with a short expiry) and a drain clears it before it claims, so a
send that finds the mark set knows a drain has yet to start and will see its rows. A
thousand independent sends then leave one or two wake-ups behind, not a thousand, and an
urgent wake-up never queues behind stale ones of its own lane. Without Redis (eager mode,
other brokers) every wake-up is published and the time stamp alone saves the work.

Tasks are published by name, so services never import `notifications.tasks`.
"""
from __future__ import annotations

import functools
import logging
import time
from collections.abc import Iterable

import redis
from celery import current_app
from django.db import transaction
from kombu.exceptions import OperationalError

logger = logging.getLogger(__name__)

DRAIN_TASK = "notifications.drain_lane"
LANE_ORDER = {"urgent": 0, "default": 1, "bulk": 2}


# How long a mark may outlive a wake-up that was lost (a broker restarted without its data):
# meanwhile sends to the lane rely on the sweep.
PENDING_MARK_SECONDS = 10


def wake(lane: str, *, force: bool = False) -> bool:
    """Publish a drain of `lane` now, stamped with the time, unless one is already waiting
    (`force`: publish anyway; the sweep does). False when the broker is down.

    No publish retries: with the broker unreachable a send still answers at once, and its
    rows stay queued for the sweep (`EMAIL_SWEEP_SECONDS`) to wake once the broker is back.
    """
    marks = _marks()
    key = _mark_key(lane)
    if marks is not None and not force:
        try:
            if not marks.set(key, "1", nx=True, px=PENDING_MARK_SECONDS * 1000):
                return True  # a wake-up is waiting and its drain has not started: it will see our rows
        except redis.RedisError:
            marks = None  # publish anyway
    try:
        current_app.signature(DRAIN_TASK, kwargs={"lane": lane, "woken_at": time.time()}, queue=lane).apply_async(
            retry=False
        )
    except (OperationalError, OSError) as exc:
        logger.warning("Could not wake the %s lane (the broker is unreachable: %s); the sweep will.", lane, exc)
        _clear(marks, key)
        return False
    return True


def taken(lane: str) -> None:
    """A drain of `lane` is starting: the next send must wake the lane again."""
    _clear(_marks(), _mark_key(lane))


def _mark_key(lane: str) -> str:
    return f"notifications:wake-pending:{lane}"


def _clear(marks, key: str) -> None:
    if marks is None:
        return
    try:
        marks.delete(key)
    except redis.RedisError:
        logger.info("Could not clear the wake-up mark %s; it expires in %s s.", key, PENDING_MARK_SECONDS)


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
