"""What a test key's messages go through instead of delivery (GOV.UK Notify's test keys).

The message is rendered and audited like any other, then moves `sent` → `delivered`, or
to `bounced` (permanent) / `complaint` for the two simulator addresses, with the events a
provider would have reported. Nothing reaches a backend; every status change goes through
the state machine (`core.outbox.lifecycle`), as a provider's report would.

A channel's failure addresses (`Channel.simulated_failure`; the email channel's four in
`backends.development`: a temporary or permanent refusal, a timeout after DATA, an outage)
raise instead the exception a real provider's failure raises, before anything is written, so
the drain has the channel classify it and hands it to the real retry policy
(`core.outbox.retries`) as it would a provider's.
"""
from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from notifications.audit_text import AuditText, label
from notifications.core.channels import Channel
from notifications.models import BounceType, Message, EventType

from notifications.core.outbox import lifecycle
from notifications.core import tracking

BOUNCE_ADDRESS = "bounce@simulator.invalid"
COMPLAINT_ADDRESS = "complaint@simulator.invalid"
PROVIDER = "simulator"


def simulate(message: Message, *, channel: Channel) -> None:
    """Finish a claimed test message as the provider would have: its outcome is a provider
    event, recorded and applied by the same service as a real webhook's (`core.tracking`).

    Raises, writing nothing, the failure a failure address of `channel` asks for (see the
    module's docstring).
    """
    failure = channel.simulated_failure(message)
    if failure is not None:
        raise failure
    _accept(message, channel=channel)


@transaction.atomic
def _accept(message: Message, *, channel: Channel) -> None:
    now = timezone.now()
    provider_message_id = f"simulated-{message.pk.hex}"
    if not lifecycle.mark_simulated_sent(message.pk, at=now, provider_message_id=provider_message_id):
        return
    address = channel.suppression_key(message.address)
    outcome = {"event_type": EventType.DELIVERED}
    if address == BOUNCE_ADDRESS:
        outcome = {"event_type": EventType.BOUNCED, "bounce_type": BounceType.PERMANENT, "bounce_subtype": "simulated"}
    elif address == COMPLAINT_ADDRESS:
        outcome = {"event_type": EventType.COMPLAINT}
    common = {"provider": PROVIDER, "occurred_at": now, "notification_id": str(message.pk),
              "provider_message_id": provider_message_id, "recipient": message.address}
    tracking.record(tracking.ProviderEvent(
        **common, event_type=EventType.SENT, provider_event_id=f"{provider_message_id}-sent",
        description=AuditText("simulator_accepted"),
    ))
    tracking.record(tracking.ProviderEvent(
        **common, **outcome, provider_event_id=f"{provider_message_id}-outcome",
        description=AuditText("simulator_outcome", {"event": label("event_type", outcome["event_type"])}),
        payload={"simulated": outcome["event_type"], "recipient": message.address},
    ))
