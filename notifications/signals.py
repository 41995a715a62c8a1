"""Signals for integrators and for the service's own policies."""
from django.dispatch import Signal

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
