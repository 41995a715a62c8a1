"""Providers: the base class that owns the send loop of one claimed row, as anymail's
`AnymailBaseBackend` and GOV.UK Notify's `SmsClient.send_sms` do.

`Provider.send` does, once for every provider: the timing, the logging, the error
classification (an error is raised as `DeliveryFailed` with its class, from the cause) and
what to record of a sent row (`lifecycle.Sent`). A provider fills hooks and nothing else:

- `send_one(row)`: hand the row over; returns `Handed` (who took it, its id there);
- `classify(exc)`: the class of an error `send_one` raised (`channels.ClassifiedError`);
- `open()` / `close()`: what it keeps open between rows (a connection), if anything;
- `keys()`: the provider keys its rows may record (whose webhook events apply to them).

Every hook a subclass must fill raises `NotImplementedError` naming the class and method.

Issue 21's per-provider concurrency and caps go in `slot`: the context every send runs in.
It is a no-op today (the drain sends one row at a time per process).
"""
from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass

from django.utils import timezone

from notifications.core.channels import ClassifiedError, DeliveryFailed
from notifications.core.outbox.lifecycle import Sent

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Handed:
    """What `send_one` reports of a row the provider took.

    `sent_via`: its name for staff (a server, an ESP); `provider`: the key its webhook
    events come under; `provider_message_id`: the row's id there; `from_address`: the
    sender it went out as, when the provider chose one ("" keeps the row's).
    """

    sent_via: str
    provider: str
    provider_message_id: str = ""
    from_address: str = ""


class Provider:
    """Base of every provider; see the module's docstring. `name` is for the logs."""

    name: str = ""

    def send(self, row) -> Sent:
        """Deliver one claimed row: what to record once it is taken; `DeliveryFailed` if not."""
        started_at, started = timezone.now(), time.monotonic()
        try:
            with self.slot(row):
                handed = self.send_one(row)
        except Exception as exc:
            error = self.classify(exc)
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("%s did not take message %s after %.1f ms: %s (%s)", self.label(), row.pk,
                             (time.monotonic() - started) * 1000, error, error.kind)
            raise DeliveryFailed(error) from exc
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s took message %s in %.1f ms.", handed.sent_via, row.pk, (time.monotonic() - started) * 1000)
        return Sent(
            message_id=row.pk, provider_message_id=handed.provider_message_id[:255], sent_via=handed.sent_via[:100],
            from_email=handed.from_address or row.from_email, attempt=row.attempts, started_at=started_at,
            provider=handed.provider[:50],
        )

    def slot(self, row) -> contextlib.AbstractContextManager:
        """The context one send runs in: where issue 21's per-provider concurrency and caps
        will wait for room (a semaphore, a token bucket). None yet."""
        return contextlib.nullcontext()

    def label(self) -> str:
        return self.name or type(self).__qualname__

    # --- hooks ---------------------------------------------------------------------------------

    def send_one(self, row) -> Handed:
        raise NotImplementedError(f"{type(self).__qualname__}.send_one()")

    def classify(self, exc: BaseException) -> ClassifiedError:
        raise NotImplementedError(f"{type(self).__qualname__}.classify()")

    def open(self) -> None:
        """Open what the provider keeps between rows (nothing by default)."""

    def close(self) -> None:
        """Close what `open` opened; the next send opens it again."""

    def keys(self) -> set[str]:
        return {self.name} if self.name else set()


__all__ = ["Handed", "Provider"]
