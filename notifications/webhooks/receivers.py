"""The receiver of anymail's `tracking` signal: every tracking webhook's events go to
`services.tracking.record`, as the simulator's do."""
from __future__ import annotations

from anymail.signals import AnymailTrackingEvent

from notifications.services import tracking

from .mapping import provider_event


def on_tracking(sender, *, event: AnymailTrackingEvent, esp_name: str, **kwargs) -> None:
    tracking.record(provider_event(event, esp_name=esp_name))
