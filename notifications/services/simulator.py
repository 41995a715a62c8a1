"""What a test key's messages go through instead of delivery (GOV.UK Notify's test keys).

The message is rendered and audited like any other, then moves `sent` → `delivered`, or
to `bounced` (permanent) / `complaint` for the two simulator addresses, with the events a
provider would have reported. Nothing reaches a backend.
"""
from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from notifications.models import BounceType, DeliveryEvent, EmailMessage, EventType, Status

BOUNCE_ADDRESS = "bounce@simulator.invalid"
COMPLAINT_ADDRESS = "complaint@simulator.invalid"
PROVIDER = "simulator"


@transaction.atomic
def simulate(message: EmailMessage) -> str:
    """Finish a claimed test message as the provider would have. Returns the final status."""
    now = timezone.now()
    address = message.recipient_email.lower()
    final, event, fields = Status.DELIVERED, EventType.DELIVERED, {"delivered_at": now}
    if address == BOUNCE_ADDRESS:
        final, event = Status.BOUNCED, EventType.BOUNCED
        fields = {"bounce_type": BounceType.PERMANENT, "bounce_subtype": "simulated"}
    elif address == COMPLAINT_ADDRESS:
        final, event, fields = Status.COMPLAINT, EventType.COMPLAINT, {}
    EmailMessage.objects.filter(pk=message.pk, status=Status.SENDING).update(
        status=final, sent_at=now, provider_message_id=f"simulated-{message.pk.hex}", sealed_content="",
        updated_at=now, **fields
    )
    DeliveryEvent.objects.bulk_create([
        DeliveryEvent(message=message, event_type=EventType.SENT, provider=PROVIDER, occurred_at=now,
                      detail="Test key: accepted by the simulator, not delivered."),
        DeliveryEvent(message=message, event_type=event, provider=PROVIDER, occurred_at=now,
                      detail=f"Test key: simulated {final}."),
    ])
    return final
