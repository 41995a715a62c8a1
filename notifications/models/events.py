"""Delivery events: every status change a provider, the simulator or the worker reports.

Each event is stored as received (`payload`), once: a provider that retries a webhook, or
SES naming the same SNS message for several recipients, meets the unique constraint on
(provider, provider event id, recipient, type). An event for no known message is kept
unmatched (`message` empty) for staff; one for a message not yet `sent` is kept `pending`
and applied when the message is (services/tracking.py).
"""
import uuid

from django.db import models
from django.db.models.functions import Upper
from django.utils.translation import gettext_lazy as _

from notifications import audit_text

from notifications.models.messages import Message


class EventType(models.TextChoices):
    SENT = "sent", _("Sent")
    DELIVERED = "delivered", _("Delivered")
    BOUNCED = "bounced", _("Bounced")
    COMPLAINT = "complaint", _("Complaint")
    FAILED = "failed", _("Failed")
    DEFERRED = "deferred", _("Deferred")
    OPENED = "opened", _("Opened")
    CLICKED = "clicked", _("Clicked")
    UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")
    OTHER = "other", _("Other")


class DeliveryEvent(models.Model):
    id = models.UUIDField(verbose_name=_("ID"), primary_key=True, default=uuid.uuid4, editable=False)
    message = models.ForeignKey(
        Message, verbose_name=_("message"), null=True, blank=True, on_delete=models.CASCADE,
        related_name="events", help_text=_("Empty when no known message matched the event (unmatched)."),
    )
    event_type = models.CharField(verbose_name=_("event type"), max_length=20, choices=EventType.choices)
    provider = models.CharField(
        verbose_name=_("provider"), max_length=50, help_text=_("Who reported it: smtp, simulator, sendgrid, ...")
    )
    provider_event_id = models.CharField(
        verbose_name=_("provider event id"), max_length=255, blank=True, help_text=_("The provider's id of the event (SES: the SNS message id).")
    )
    provider_message_id = models.CharField(
        verbose_name=_("provider message id"), max_length=255, blank=True, help_text=_("The provider's id of the message.")
    )
    recipient = models.CharField(
        verbose_name=_("recipient"), max_length=320, blank=True, help_text=_("The address the event is about.")
    )
    occurred_at = models.DateTimeField(verbose_name=_("occurred at"))
    detail = models.TextField(
        verbose_name=_("detail"), blank=True,
        help_text=_("A provider's own words as it sent them, or our description in English (see detail_code)."),
    )
    detail_code = models.CharField(
        verbose_name=_("detail code"), max_length=60, blank=True, default="", db_default="",
        help_text=_("The stable code of our own description (notifications.audit_text), shown translated."),
    )
    detail_params = models.JSONField(verbose_name=_("detail parameters"), null=True, blank=True, default=None)
    bounce_type = models.CharField(
        verbose_name=_("bounce type"), max_length=20, blank=True, help_text=_("For a bounce: permanent or temporary.")
    )
    bounce_subtype = models.CharField(verbose_name=_("bounce subtype"), max_length=50, blank=True)
    pending = models.BooleanField(
        verbose_name=_("pending"), default=False, help_text=_("Received before the message was sent; applied once it is.")
    )
    payload = models.JSONField(
        verbose_name=_("payload"), default=dict, blank=True, help_text=_("The event as received.")
    )
    created_at = models.DateTimeField(verbose_name=_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["occurred_at", "created_at"]
        verbose_name = _("delivery event")
        verbose_name_plural = _("delivery events")
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_event_id", "recipient", "event_type"],
                condition=~models.Q(provider_event_id=""), name="delivery_event_once",
            ),
        ]
        indexes = [
            # The drain looks for events kept for the messages it just recorded as sent.
            models.Index(fields=["message"], name="delivery_event_pending", condition=models.Q(pending=True)),
            # A recipient's history also lists the events that matched no message of ours
            # (case-insensitive, as the address search): few rows, so a partial index.
            models.Index(Upper("recipient"), name="delivery_event_unmatched",
                         condition=models.Q(message__isnull=True)),
        ]

    def __str__(self) -> str:
        return _("%(event)s (%(provider)s) for %(message)s") % {
            "event": self.get_event_type_display(), "provider": self.provider,
            "message": self.message_id or _("no known message")}

    @property
    def detail_text(self) -> str:
        """Our description in the reader's language, or the stored text (a provider's own words)."""
        return audit_text.render(self.detail_code, self.detail_params, fallback=self.detail)
