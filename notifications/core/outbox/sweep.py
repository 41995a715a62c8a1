"""The sweep: what no wake-up will otherwise see to (Celery beat every `OUTBOX_SWEEP_SECONDS`).

- Rows left `sending` past `OUTBOX_LEASE_SECONDS` (their worker died) go back to
  `queued`: at least once, never lost; a worker that died after the server accepted a
  message but before recording it is the one case delivered twice.
- Queued rows undelivered `OUTBOX_MAX_QUEUE_SECONDS` after they became due are `expired`.
- Every lane with a due row is woken: wake-ups lost because the broker was down at
  enqueue, retries whose backoff has passed, scheduled messages whose time has come, and
  lanes that rested after an outage.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.utils import timezone

from notifications.core.outbox import lifecycle
from notifications.core.outbox import wakeups

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepResult:
    released: int
    expired: int
    woken: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"released": self.released, "expired": self.expired, "woken": self.woken}


def sweep(*, now=None) -> SweepResult:
    """Release expired claims, expire overdue rows, wake the lanes that have due rows."""
    now = now or timezone.now()
    released = lifecycle.release_expired_leases(now=now)
    expired = lifecycle.expire_overdue(now=now)
    # Forced: a mark whose wake-up the broker lost must not hold a lane back for long.
    woken = [lane for lane in lifecycle.lanes_with_due_messages(now=now) if wakeups.wake(lane, force=True)]
    if released:
        logger.warning("Sweep: %d claims of stopped workers released (at least once: they may be sent again).",
                       released)
    if expired:
        logger.warning("Sweep: %d queued messages expired (OUTBOX_MAX_QUEUE_SECONDS).", expired)
    return SweepResult(released=released, expired=expired, woken=woken)
