"""What a test key's messages go through instead of delivery (GOV.UK Notify's test keys).

The message is rendered and audited like any other, then moves `sent` → `delivered`, or
to `bounced` (permanent) / `complaint` for the two simulator addresses, with the events a
provider would have reported. Nothing reaches a backend; every status change goes through
the state machine (`services.lifecycle`), as a provider's report would.
"""
from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from notifications.models import BounceType, DeliveryEvent, EmailMessage, EventType

from . import lifecycle

BOUNCE_ADDRESS = "bounce@simulator.invalid"
COMPLAINT_ADDRESS = "complaint@simulator.invalid"
PROVIDER = "simulator"


@transaction.atomic
def simulate(message: EmailMessage) -> None:
    """Finish a claimed test message as the provider would have."""
    now = timezone.now()
    if not lifecycle.mark_simulated_sent(message.pk, at=now, provider_message_id=f"simulated-{message.pk.hex}"):
        return
    address = message.recipient_email.lower()
    if address == BOUNCE_ADDRESS:
        lifecycle.mark_bounced(message.pk, bounce_type=BounceType.PERMANENT, bounce_subtype="simulated")
        event, final = EventType.BOUNCED, "bounced"
    elif address == COMPLAINT_ADDRESS:
        lifecycle.mark_complaint(message.pk)
        event, final = EventType.COMPLAINT, "complaint"
    else:
        lifecycle.mark_delivered(message.pk, at=now)
        event, final = EventType.DELIVERED, "delivered"
    DeliveryEvent.objects.bulk_create([
        DeliveryEvent(message=message, event_type=EventType.SENT, provider=PROVIDER, occurred_at=now,
                      detail="Test key: accepted by the simulator, not delivered."),
        DeliveryEvent(message=message, event_type=event, provider=PROVIDER, occurred_at=now,
                      detail=f"Test key: simulated {final}."),
    ])
