"""Signals for integrators and for the service's own policies, and `announce`, the one way
the service sends them."""
import logging

from django.dispatch import Signal

logger = logging.getLogger(__name__)

#: Sent by the state machine (services/lifecycle.py) after the transaction that changed a
#: message's status commits: `message` (the Message, refreshed), `old` and `new` statuses.
message_status_changed = Signal()

#: Sent after a new DeliveryEvent is stored (not for a duplicate): `event` (the DeliveryEvent),
#: `message` (the Message or None when unmatched).
delivery_event_recorded = Signal()

#: Sent once after `delivery_event_recorded` for a batch of new events stored together (a
#: provider's POST): `events`, a list of (DeliveryEvent, Message or None). The service's
#: suppression policy follows it, so a batch of thousands costs a few statements.
delivery_events_recorded = Signal()

#: Sent after an address is put on the suppression list: `suppression`, `address`, `scope`.
recipient_suppressed = Signal()

#: Sent after an inbound email is stored: `email` (the InboundEmail). Receivers filter
#: what they want (001: `def on_email_received(sender, *, email, **kwargs)`).
email_received = Signal()


def announce(signal: Signal, *, sender: type, about: str = "", **kwargs) -> None:
    """Send `signal` to every receiver, as the service always does once its transaction has
    committed: `send_robust`, so a receiver that raises is logged (naming the signal and
    `about`, what it was sent for) and stops neither the other receivers nor the caller,
    whose work is already committed."""
    for receiver, result in signal.send_robust(sender=sender, **kwargs):
        if isinstance(result, Exception):
            logger.error("A receiver of %s (%r) raised%s", _NAMES.get(signal, "a signal"), receiver,
                         f" {about}" if about else "", exc_info=result)


#: Each signal's name here, for the log line of a receiver that raised.
_NAMES = {value: name for name, value in list(globals().items()) if isinstance(value, Signal)}
