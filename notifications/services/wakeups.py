"""Waking a lane's drain: the one module that publishes delivery work, by task name.

The table is the queue (`services.outbox`); a task carries no message, only "lane X may
have due rows since time T". A send publishes at most one wake-up per lane per
transaction, after it commits; a duplicate or late wake-up finds nothing, and when the
worker has already drained the lane since T it costs no query at all.

Tasks are published by name, so services never import `notifications.tasks`.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from celery import current_app
from django.db import transaction
from kombu.exceptions import OperationalError

logger = logging.getLogger(__name__)

DRAIN_TASK = "notifications.drain_lane"
LANE_ORDER = {"urgent": 0, "default": 1, "bulk": 2}


def wake(lane: str) -> bool:
    """Publish a drain of `lane` now, stamped with the time. False when the broker is down.

    No publish retries: with the broker unreachable a send still answers at once, and its
    rows stay queued for the sweep (`EMAIL_SWEEP_SECONDS`) to wake once the broker is back.
    """
    try:
        current_app.signature(DRAIN_TASK, kwargs={"lane": lane, "woken_at": time.time()}, queue=lane).apply_async(
            retry=False
        )
    except (OperationalError, OSError) as exc:
        logger.warning("Could not wake the %s lane (the broker is unreachable: %s); the sweep will.", lane, exc)
        return False
    return True


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
