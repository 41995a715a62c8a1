"""The webhooks' own refusals (codes in docs/ERROR_CODES.md); SNS's are in `sns`."""
from __future__ import annotations

from notifications.exceptions import InputError, NotificationError


class UnreadablePayload(NotificationError):
    """A body that is not a payload the provider sends (400)."""

    code = "unreadable_payload"


class InvalidTimestamp(InputError):
    """An event time no provider sends (400): out of `datetime`'s range, or not a number."""

    code = "invalid_timestamp"
    field = "timestamp"


class InboundTooLarge(NotificationError):
    """An inbound message above `EMAIL_INBOUND_MAX_BYTES` (413)."""

    status_code = 413
    code = "inbound_too_large"
