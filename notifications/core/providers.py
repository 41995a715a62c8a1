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

The caps of issue 21 are held here, in `slot`, the context every send runs in, for every
provider alike: `OUTBOX_PROVIDER_CAPS` names, per provider key (`cap_key(row)`), at most how many
connections may be open at once and how many messages a second may go, across every process
(`core.caps`, in Redis; within the one process without it). Each kept-open connection holds
one connection slot while it lives (renewed with `Slot.keep()` before each message; a lapsed
slot closes its connection before it is used again; all are closed and given back when a drain
ends), the process's sending threads sharing them, and each message takes one rate grant. A message held back by a cap waits, up to `OUTBOX_CAP_WAIT_SECONDS`; past that it
is an outage of the provider (`ErrorClass.OUTAGE`): it goes back uncounted, never failed.
"""
from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from notifications.audit_text import AuditText
from notifications.core import caps
from notifications.core.channels import ClassifiedError, DeliveryFailed, ErrorClass
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


CAPS_SETTING = "OUTBOX_PROVIDER_CAPS"


@dataclass(frozen=True)
class Caps:
    """One provider key's caps (`OUTBOX_PROVIDER_CAPS`); None: no cap of that kind."""

    connections: int | None = None
    per_second: float | None = None

    def __str__(self) -> str:
        shown = [f"{self.connections} connections"] if self.connections else []
        return ", ".join(shown + ([f"{self.per_second:g}/s"] if self.per_second else []))


def caps_for(key: str) -> Caps | None:
    """The caps `OUTBOX_PROVIDER_CAPS` sets for the provider key `key`, or None."""
    entry = (getattr(settings, CAPS_SETTING, None) or {}).get(key) if key else None
    if not entry:
        return None
    connections, per_second = entry.get("connections"), entry.get("per_second")
    found = Caps(connections=int(connections) if connections else None,
                 per_second=float(per_second) if per_second else None)
    return found if found.connections or found.per_second else None


class CapWait(Exception):
    """A message a provider's cap held back longer than `OUTBOX_CAP_WAIT_SECONDS`: not attempted."""

    def __init__(self, key: str, held: Caps) -> None:
        self.key, self.caps = key, held
        super().__init__(f"{key} is at its cap ({held})")

    def classified(self) -> ClassifiedError:
        why = AuditText("cap_wait", {"provider": self.key, "cap": str(self.caps), "setting": CAPS_SETTING})
        return ClassifiedError(kind=ErrorClass.OUTAGE, text=why, reason=why)


_providers_lock = threading.Lock()


class Provider:
    """Base of every provider; see the module's docstring. `name` is for the logs."""

    name: str = ""
    paces_itself: bool = False  # True: `send_one` calls `pace(row)` itself, see there

    def send(self, row) -> Sent:
        """Deliver one claimed row: what to record once it is taken; `DeliveryFailed` if not."""
        started_at, started = timezone.now(), time.monotonic()
        try:
            with self.slot(row):
                handed = self.send_one(row)
        except Exception as exc:
            error = exc.classified() if isinstance(exc, CapWait) else self.classify(exc)
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

    @contextlib.contextmanager
    def slot(self, row):
        """The context one send runs in: it waits for room under the caps of the row's
        provider key (`cap_key`), or raises `CapWait` once it waited too long.

        Under a connection cap, each kept-open connection is one held slot (`core.caps`): a
        send takes an idle connection of this process, or opens a new one when a slot comes
        free, whichever comes first, and gives it back afterwards (`connection_id` names it to
        the provider). So a process sending N at once under a cap of C holds at most C.
        """
        key = self.cap_key(row)
        held = caps_for(key)
        wait = float(getattr(settings, "OUTBOX_CAP_WAIT_SECONDS", 10))
        slot = self._take_connection_slot(key, held, wait=wait) if held and held.connections else None
        local = self._local()
        local.slot = slot
        try:
            if held and held.per_second and not self.paces_itself:
                self.pace(row)
            yield
        finally:
            local.slot = None
            if slot is not None:
                self._give_back(key, slot)

    def connection_id(self):
        """Which kept-open connection this send uses: its slot's under a connection cap, else
        this thread's own."""
        slot = getattr(self._local(), "slot", None)
        return slot.token if slot is not None else threading.get_ident()

    def pace(self, row) -> None:
        """Wait for a grant of the row's rate cap (`per_second`), or raise `CapWait`. `slot`
        calls it, unless the provider calls it itself as late as it can (`paces_itself`): just
        before the message goes, once its connection is open."""
        key = self.cap_key(row)
        held = caps_for(key)
        if held is None or not held.per_second:
            return
        wait = float(getattr(settings, "OUTBOX_CAP_WAIT_SECONDS", 10))
        if not caps.wait_for_rate(key, per_second=held.per_second, timeout=wait):
            raise CapWait(key, held)

    def _local(self) -> threading.local:
        with _providers_lock:
            if "_thread" not in self.__dict__:
                self._thread = threading.local()
                self._idle: dict[str, list[caps.Slot]] = {}
                self._returned = threading.Condition()
        return self._thread

    def _take_connection_slot(self, key: str, held: Caps, *, wait: float) -> caps.Slot:
        """An idle slot (and its open connection) of this process, or a new one from the cap."""
        self._local()
        deadline = time.monotonic() + wait
        lease = float(getattr(settings, "OUTBOX_CAP_LEASE_SECONDS", 30))
        while True:
            with self._returned:
                idle = self._idle.get(key)
                slot = idle.pop() if idle else None
            if slot is not None:
                if slot.keep():
                    return slot
                # Its lease lapsed: another process may hold it, so its connection goes.
                logger.info("A connection slot of %s lapsed; closing its connection.", key)
                self.close_connection(slot.token)
                continue
            taken = caps.try_slot(key, limit=held.connections, lease_seconds=lease)
            if isinstance(taken, caps.Slot):
                return taken
            left = deadline - time.monotonic()
            if left <= 0:
                raise CapWait(key, held)
            with self._returned:  # a sibling giving one back wakes this thread at once
                self._returned.wait(min(left, taken, caps.SLOT_POLL_SECONDS))

    def _give_back(self, key: str, slot: caps.Slot) -> None:
        with self._returned:
            self._idle.setdefault(key, []).append(slot)
            self._returned.notify()

    def release_slots(self) -> None:
        """Give back every idle connection slot of this process: call it once their
        connections are closed."""
        if "_thread" not in self.__dict__:
            return
        with self._returned:
            idle, self._idle = self._idle, {}
        for slots in idle.values():
            for slot in slots:
                slot.release()

    def drain_ended(self) -> None:
        """A drain ended: the connections held under a connection cap are closed and their
        slots given back, so no idle connection outlives its slot's lease (the relay would
        count it while another process took the lapsed slot), and the processes waiting get
        their turn. Called while nothing is in flight."""
        if "_thread" in self.__dict__ and any(self._idle.values()):
            self.close()
            self.release_slots()

    def close_connection(self, connection_id) -> None:
        """Close one kept-open connection (`connection_id`); by default all of them."""
        self.close()

    def cap_key(self, row) -> str:
        """The provider key whose caps hold for `row` (`OUTBOX_PROVIDER_CAPS`); "" for none."""
        return self.name

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


__all__ = ["CAPS_SETTING", "CapWait", "Caps", "Handed", "Provider", "caps_for"]
