"""Delivery events: every status change a provider, the simulator or the worker reports."""
import uuid

from django.db import models
from django.utils.translation import gettext_lazy as _

from .messages import EmailMessage


class EventType(models.TextChoices):
    SENT = "sent", _("Sent")
    DELIVERED = "delivered", _("Delivered")
    BOUNCED = "bounced", _("Bounced")
    COMPLAINT = "complaint", _("Complaint")
    FAILED = "failed", _("Failed")
    OTHER = "other", _("Other")


class DeliveryEvent(models.Model):
    id = models.UUIDField(verbose_name=_("ID"), primary_key=True, default=uuid.uuid4, editable=False)
    message = models.ForeignKey(EmailMessage, verbose_name=_("message"), on_delete=models.CASCADE, related_name="events")
    event_type = models.CharField(verbose_name=_("event type"), max_length=20, choices=EventType.choices)
    provider = models.CharField(verbose_name=_("provider"), max_length=50, help_text=_("Who reported it: smtp, simulator, sendgrid, ..."))
    occurred_at = models.DateTimeField(verbose_name=_("occurred at"))
    detail = models.TextField(verbose_name=_("detail"), blank=True)
    payload = models.JSONField(verbose_name=_("payload"), default=dict, blank=True, help_text=_("The event as received."))
    created_at = models.DateTimeField(verbose_name=_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["occurred_at", "created_at"]
        verbose_name = _("delivery event")
        verbose_name_plural = _("delivery events")

    def __str__(self) -> str:
        return f"{self.event_type} ({self.provider}) for {self.message_id}"
