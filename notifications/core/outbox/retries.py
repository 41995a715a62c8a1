"""The retry policy: what comes of a claimed message the backend did not take.

One decision, one place, for every channel. The provider's error is classified at the edge,
by the row's channel (`core.channels.ClassifiedError`: the email channel's through
`channels/email/backends/errors.py`), then:

- an **outage** (no server could be reached at all) is not the message's failure: the drain
  puts the whole batch back uncounted and backs the lane off (`OutageError` tells it so);
- an **unknown outcome** (the whole message went out, the answer to DATA never came) is
  `failed` at once and never retried on its own: the server may have taken it;
- a **permanent** refusal is `failed` at once;
- a **transient** failure goes back to `queued`, due after an exponential backoff with full
  jitter, until the message's `max_attempts` are spent (then `failed` with the last error),
  or `expired` when the next try would fall past `OUTBOX_MAX_QUEUE_SECONDS`.
"""
from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from notifications.audit_text import AuditText, clipped
from notifications.core.channels import ClassifiedError, ErrorClass
from notifications.models import DeliveryAttempt, Message

from notifications.core.outbox import lifecycle

logger = logging.getLogger(__name__)

RETRIED, FAILED, EXPIRED = "retried", "failed", "expired"
_random = random.SystemRandom()


class OutageError(Exception):
    """No server could be reached: the batch goes back uncounted (see the module's docstring)."""

    def __init__(self, error: ClassifiedError) -> None:
        self.error = error
        self.reason = AuditText("not_attempted", {"reason": error.reason})
        super().__init__(self.reason.english)


def backoff_seconds(failures: int, *, rng: random.Random = _random) -> float:
    """Full jitter: uniformly between 0 and min(max, base × 2^(failures − 1)).

    Spreads the retries of many messages that failed together, so they do not return to the
    server in one wave (AWS's "Exponential Backoff And Jitter").
    """
    base = settings.OUTBOX_RETRY_BACKOFF_BASE_SECONDS
    ceiling = min(settings.OUTBOX_RETRY_BACKOFF_MAX_SECONDS, base * 2 ** max(0, failures - 1))
    return rng.uniform(0, ceiling)


def became_due_at(message: Message) -> datetime:
    return message.send_at or message.created_at


OUTCOMES = {
    ErrorClass.TRANSIENT: DeliveryAttempt.Outcome.TRANSIENT,
    ErrorClass.PERMANENT: DeliveryAttempt.Outcome.PERMANENT,
    ErrorClass.UNKNOWN: DeliveryAttempt.Outcome.UNKNOWN,
}


def settle_failure(message: Message, classified: ClassifiedError, *, started_at: datetime) -> str:
    """Record what comes of one failed attempt, classified by the row's channel; returns
    RETRIED, FAILED or EXPIRED.

    Raises `OutageError` instead when the failure is the server's, not the message's.
    """
    if classified.kind is ErrorClass.OUTAGE:
        raise OutageError(classified)
    error = clipped(str(classified))  # in English, for the logs and the English columns
    outcome = OUTCOMES[classified.kind]
    failure = lifecycle.Failure(
        message_id=message.pk, attempt=message.attempts, started_at=started_at, error=error,
        sent_via=classified.sent_via[:100], outcome=outcome, text=classified.text,
    )
    logger.warning("Delivery of message %s failed (attempt %d of %d): %s",
                   message.pk, message.attempts, message.max_attempts, error)
    if outcome != DeliveryAttempt.Outcome.TRANSIENT:
        lifecycle.fail(failure)
        return FAILED
    if message.attempts >= message.max_attempts:
        spent = AuditText("attempts_spent", {"error": classified.text, "attempts": message.attempts,
                                             "max_attempts": message.max_attempts})
        lifecycle.fail(lifecycle.Failure(**{**failure.__dict__, "error": clipped(spent.english), "text": spent}))
        return FAILED
    next_attempt_at = timezone.now() + timedelta(seconds=backoff_seconds(message.attempts))
    if next_attempt_at > became_due_at(message) + timedelta(seconds=settings.OUTBOX_MAX_QUEUE_SECONDS):
        lifecycle.expire_claimed(failure, reason=lifecycle.expiry_reason())
        return EXPIRED
    lifecycle.retry_later(failure, next_attempt_at=next_attempt_at)
    return RETRIED


def release_simulated_outage(message: Message, outage: OutageError) -> int:
    """A test key's simulated outage (`core.outbox.simulator`): that message alone goes back to
    `queued` uncounted, due after the backoff, and its lane goes on; a real outage rests the
    whole lane instead (`core.outbox.drain`), which a test key must never do to live mail."""
    next_attempt_at = timezone.now() + timedelta(seconds=outage_delay(1))
    return lifecycle.release([message.pk], next_attempt_at=next_attempt_at, reason=outage.reason)


def outage_delay(outages: int) -> float:
    """How long a lane rests after its `outages`-th outage in a row: the same backoff."""
    return backoff_seconds(outages)
