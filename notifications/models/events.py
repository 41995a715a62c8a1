"""Delivery events: every status change a provider, the simulator or the worker reports.

Each event is stored as received (`payload`), once: a provider that retries a webhook, or
SES naming the same SNS message for several recipients, meets the unique constraint on
(provider, provider event id, recipient, type). An event for no known message is kept
unmatched (`message` empty) for staff; one for a message not yet `sent` is kept `pending`
and applied when the message is (services/tracking.py).
"""
import uuid

from django.db import models

from .messages import EmailMessage


class EventType(models.TextChoices):
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    BOUNCED = "bounced", "Bounced"
    COMPLAINT = "complaint", "Complaint"
    FAILED = "failed", "Failed"
    DEFERRED = "deferred", "Deferred"
    OPENED = "opened", "Opened"
    CLICKED = "clicked", "Clicked"
    UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
    OTHER = "other", "Other"


class DeliveryEvent(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    message = models.ForeignKey(
        EmailMessage, null=True, blank=True, on_delete=models.CASCADE, related_name="events",
        help_text="Empty when no known message matched the event (unmatched).",
    )
    event_type = models.CharField(max_length=20, choices=EventType.choices)
    provider = models.CharField(max_length=50, help_text="Who reported it: smtp, simulator, sendgrid, ...")
    provider_event_id = models.CharField(
        max_length=255, blank=True, help_text="The provider's id of the event (SES: the SNS message id)."
    )
    provider_message_id = models.CharField(max_length=255, blank=True, help_text="The provider's id of the message.")
    recipient = models.CharField(max_length=320, blank=True, help_text="The address the event is about.")
    occurred_at = models.DateTimeField()
    detail = models.TextField(blank=True)
    bounce_type = models.CharField(max_length=20, blank=True, help_text="For a bounce: permanent or temporary.")
    bounce_subtype = models.CharField(max_length=50, blank=True)
    pending = models.BooleanField(
        default=False, help_text="Received before the message was sent; applied once it is."
    )
    payload = models.JSONField(default=dict, blank=True, help_text="The event as received.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["occurred_at", "created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_event_id", "recipient", "event_type"],
                condition=~models.Q(provider_event_id=""), name="delivery_event_once",
            ),
        ]
        indexes = [
            # The drain looks for events kept for the messages it just recorded as sent.
            models.Index(fields=["message"], name="delivery_event_pending", condition=models.Q(pending=True)),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} ({self.provider}) for {self.message_id or 'no known message'}"
