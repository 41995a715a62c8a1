"""What a message looks like after each outcome of the retry policy (services.retries)."""
from __future__ import annotations

from django.utils import timezone

from notifications.models import DeliveryAttempt, Message, Status


def assert_put_back_uncounted(message: Message, *, says: str) -> None:
    """An outage: queued again, no attempt used or recorded, due after the lane's rest."""
    message.refresh_from_db()
    assert message.status == Status.QUEUED, message.error_message
    assert message.attempts == 0
    assert message.error_message.startswith("Not attempted: "), message.error_message
    assert says in message.error_message, message.error_message
    assert message.next_attempt_at is not None and message.next_attempt_at >= message.created_at
    assert not DeliveryAttempt.objects.filter(message=message).exists()


def assert_retry_scheduled(message: Message, *, says: str) -> None:
    """A transient failure with attempts left: queued again, due later, the attempt recorded."""
    message.refresh_from_db()
    assert message.status == Status.QUEUED, message.error_message
    assert message.attempts == 1
    assert message.error_message.startswith("transient: "), message.error_message
    assert says in message.error_message, message.error_message
    assert message.next_attempt_at is not None and message.next_attempt_at <= timezone.now() + timezone.timedelta(
        seconds=60 * 60
    )
    [attempt] = DeliveryAttempt.objects.filter(message=message)
    assert (attempt.number, attempt.outcome) == (1, DeliveryAttempt.Outcome.TRANSIENT)
    assert attempt.error == message.error_message


def assert_failed(message: Message, *, kind: str, says: str, attempts: int = 1) -> None:
    """Failed for good: the last error kept, every attempt recorded."""
    message.refresh_from_db()
    assert message.status == Status.FAILED, message.error_message
    assert message.error_message.startswith(f"{kind}: "), message.error_message
    assert says in message.error_message, message.error_message
    assert message.attempts == attempts
    assert DeliveryAttempt.objects.filter(message=message).count() == attempts
