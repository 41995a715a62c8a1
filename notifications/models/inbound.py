"""Inbound email: mail received through a provider's inbound webhook (anymail), stored
before integrators hear of it (`signals.email_received`)."""
import uuid

from django.db import models
from django.utils.translation import gettext_lazy as _

from notifications.models.messages import AttachmentBlob


class InboundEmail(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    provider = models.CharField(max_length=50, help_text=_("The ESP that received it: SendGrid, Amazon SES."))
    provider_message_id = models.CharField(max_length=255, blank=True)
    from_email = models.TextField(blank=True, help_text=_("The From header, as received."))
    envelope_sender = models.CharField(max_length=320, blank=True)
    envelope_recipient = models.CharField(max_length=320, blank=True)
    to = models.JSONField(default=list, blank=True)
    cc = models.JSONField(default=list, blank=True)
    subject = models.TextField(blank=True)
    text = models.TextField(blank=True)
    html = models.TextField(blank=True)
    headers = models.JSONField(default=list, blank=True, help_text=_("Every header, in order: [name, value]."))
    spam_score = models.FloatField(null=True, blank=True, help_text=_("Where the provider gives one (SendGrid)."))
    spam_detected = models.BooleanField(null=True, blank=True, help_text=_("The provider's verdict, if any."))
    raw_size = models.PositiveIntegerField(default=0, help_text=_("The message's size in bytes, as received."))
    received_at = models.DateTimeField(db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at"]
        verbose_name = _("inbound email")
        verbose_name_plural = _("inbound emails")

    def __str__(self) -> str:
        return f"{self.from_email} — {self.subject}"


class InboundAttachment(models.Model):
    """One attachment (or inline part) of an inbound email; the bytes are shared by SHA-256."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.ForeignKey(InboundEmail, on_delete=models.CASCADE, related_name="attachments")
    filename = models.CharField(max_length=255, blank=True)
    content_type = models.CharField(max_length=255)
    content_id = models.CharField(max_length=255, blank=True, help_text=_("For an inline part."))
    size_bytes = models.PositiveIntegerField()
    blob = models.ForeignKey(AttachmentBlob, on_delete=models.PROTECT, related_name="inbound_attachments")

    class Meta:
        ordering = ["email", "filename"]

    def __str__(self) -> str:
        return f"{self.filename or '(unnamed)'} ({self.size_bytes} bytes)"

    @property
    def sha256(self) -> str:
        return self.blob_id
