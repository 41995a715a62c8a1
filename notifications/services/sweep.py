"""Recover messages that no worker will otherwise touch again.

Two ways an accepted message can be stranded: its delivery task was never published (the
broker was down when the send committed; `on_commit` is robust, so the row stays
`queued`), or the worker that claimed it died mid-send (the broker redelivers the task,
but the claim sees `sending` and skips). The sweep re-publishes the first kind and puts
the second back to `queued` once its lease has expired. Claims stay atomic, so a sweep
racing a slow worker never sends a message twice; a worker that died after the server
accepted a message but before recording it is the one case delivered twice (at least
once, never lost).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from notifications.models import EmailMessage, Status

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepResult:
    requeued_from_sending: int
    republished: int


def sweep_stranded_messages(*, now=None) -> SweepResult:
    """Re-publish stale `queued` messages and release expired `sending` claims."""
    from notifications.tasks import enqueue_deliveries

    now = now or timezone.now()
    lease = now - timedelta(seconds=settings.EMAIL_SENDING_LEASE_SECONDS)
    expired = EmailMessage.objects.filter(status=Status.SENDING, updated_at__lt=lease)
    released_ids = list(expired.values_list("pk", flat=True))
    released = EmailMessage.objects.filter(pk__in=released_ids, status=Status.SENDING, updated_at__lt=lease).update(
        status=Status.QUEUED,
        error_message="Released by the sweep: the worker that claimed it stopped before finishing.",
        updated_at=now,
    )
    stale = now - timedelta(seconds=settings.EMAIL_SWEEP_QUEUED_AFTER_SECONDS)
    due = (
        EmailMessage.objects.filter(status=Status.QUEUED)
        .filter(Q(updated_at__lt=stale) | Q(pk__in=released_ids))
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .only("pk", "lane")
        .order_by("created_at")
    )
    republished = 0
    chunk: list[EmailMessage] = []
    for message in due.iterator(chunk_size=500):
        chunk.append(message)
        if len(chunk) == 500:
            enqueue_deliveries(chunk)
            republished, chunk = republished + len(chunk), []
    enqueue_deliveries(chunk)
    republished += len(chunk)
    if released or republished:
        logger.warning("Sweep: %d expired claims released, %d queued messages re-published.", released, republished)
    return SweepResult(requeued_from_sending=released, republished=republished)
