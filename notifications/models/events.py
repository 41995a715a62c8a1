"""Delivery events: every status change a provider, the simulator or the worker reports."""
import uuid

from django.db import models

from .messages import EmailMessage


class EventType(models.TextChoices):
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    BOUNCED = "bounced", "Bounced"
    COMPLAINT = "complaint", "Complaint"
    FAILED = "failed", "Failed"
    OTHER = "other", "Other"


class DeliveryEvent(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    message = models.ForeignKey(EmailMessage, on_delete=models.CASCADE, related_name="events")
    event_type = models.CharField(max_length=20, choices=EventType.choices)
    provider = models.CharField(max_length=50, help_text="Who reported it: smtp, simulator, sendgrid, ...")
    occurred_at = models.DateTimeField()
    detail = models.TextField(blank=True)
    payload = models.JSONField(default=dict, blank=True, help_text="The event as received.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["occurred_at", "created_at"]

    def __str__(self) -> str:
        return f"{self.event_type} ({self.provider}) for {self.message_id}"
