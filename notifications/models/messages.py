"""The audit trail: one `EmailMessage` row per recipient, and its attachments.

A row holds exactly what was (or will be) sent: the rendering is done once, when the
message is queued, so retries and resends never render differently and the audit never
depends on a template that may since have changed.
"""
import uuid

from django.conf import settings
from django.db import models

from .templates import EmailTemplateVersion, Lane


class Status(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    BOUNCED = "bounced", "Bounced"
    COMPLAINT = "complaint", "Complaint"
    FAILED = "failed", "Failed"
    SUPPRESSED = "suppressed", "Suppressed"
    RATE_LIMITED = "rate_limited", "Rate limited"
    CANCELLED = "cancelled", "Cancelled"
    EXPIRED = "expired", "Expired"


class BounceType(models.TextChoices):
    PERMANENT = "permanent", "Permanent"
    TEMPORARY = "temporary", "Temporary"


class EmailMessage(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    template_key = models.CharField(max_length=100, blank=True)
    template_version = models.ForeignKey(
        EmailTemplateVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="messages"
    )
    language = models.CharField(max_length=10, blank=True)
    recipient_email = models.EmailField(max_length=254)
    from_email = models.CharField(max_length=320)
    reply_to = models.JSONField(default=list, blank=True)
    cc = models.JSONField(default=list, blank=True)
    bcc = models.JSONField(default=list, blank=True)
    subject = models.TextField()
    html_content = models.TextField(blank=True)
    text_content = models.TextField(blank=True)
    variables = models.JSONField(default=dict, blank=True, help_text="As given, sensitive ones masked.")
    is_masked = models.BooleanField(
        default=False, help_text="Subject and contents are stored with the sensitive variables masked."
    )
    sealed_content = models.TextField(
        blank=True, editable=False,
        help_text="The unmasked rendering, encrypted; deleted once the message is sent or failed.",
    )
    mime = models.BinaryField(
        blank=True, default=b"",
        help_text="The RFC 5322 bytes as sent over SMTP, built at enqueue; empty for masked messages "
        "(and rows queued before it existed), which are built at delivery.",
    )
    attachments_count = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    lane = models.CharField(max_length=20, choices=Lane.choices, default=Lane.DEFAULT)
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=1)
    next_attempt_at = models.DateTimeField(
        null=True, blank=True,
        help_text="While queued or scheduled: when it is next due (its enqueue, its send_at, or its retry time).",
    )
    send_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    bounce_type = models.CharField(max_length=20, choices=BounceType.choices, blank=True)
    bounce_subtype = models.CharField(max_length=50, blank=True)
    error_message = models.TextField(blank=True)
    provider_message_id = models.CharField(max_length=255, blank=True)
    sent_via = models.CharField(
        max_length=100, blank=True,
        help_text="What sent it: the SMTP server's name in the admin, the ESP, or host:port.",
    )
    source_endpoint = models.CharField(max_length=100, default="internal")
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    idempotency_key = models.CharField(max_length=255, blank=True)
    is_test = models.BooleanField(default=False, help_text="Sent with a test key: simulated, never delivered.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        # Every status change rewrites a row of every index (a status is indexed, so no HOT
        # update), twice per message: plain indexes, without Django's extra `_like` copies
        # for LIKE queries that nothing makes; `status` alone is served by `message_status_due`.
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="message_status_due"),
            models.Index(fields=["template_key"], name="message_template_key"),
            models.Index(fields=["recipient_email"], name="message_recipient"),
            models.Index(fields=["provider_message_id"], name="message_provider_id"),
            # The drain's claim: the due rows of one lane, oldest due first (services.lifecycle).
            models.Index(
                fields=["lane", "next_attempt_at"], name="message_lane_due",
                condition=models.Q(status__in=["queued", "scheduled"]),
            ),
        ]
        permissions = [
            ("send_email", "Can send email"),
            ("cancel_emailmessage", "Can cancel a scheduled or queued email"),
            ("resend_emailmessage", "Can resend an email or retry a failed one"),
        ]

    def __str__(self) -> str:
        return f"{self.template_key or 'simple'} → {self.recipient_email} ({self.status})"


class DeliveryAttempt(models.Model):
    """One try at handing a message to the mail server or ESP, whatever came of it.

    A server outage (unreachable, no greeting, no TLS, no active server) is not an attempt
    of the message: its batch is put back uncounted, so it has no row here.
    """

    class Outcome(models.TextChoices):
        SENT = "sent", "Sent"
        TRANSIENT = "transient", "Transient failure"
        PERMANENT = "permanent", "Permanent failure"
        UNKNOWN = "unknown", "Outcome unknown"

    id = models.BigAutoField(primary_key=True)
    message = models.ForeignKey(EmailMessage, on_delete=models.CASCADE, related_name="delivery_attempts")
    number = models.PositiveSmallIntegerField(help_text="1 for the first attempt.")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    error = models.TextField(blank=True)
    server = models.CharField(max_length=100, blank=True, help_text="What it was handed to (sent_via).")

    class Meta:
        ordering = ["message", "number", "started_at"]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.message_id}: {self.outcome}"


class AttachmentBlob(models.Model):
    """An attachment's bytes, stored once per content (SHA-256).

    A message to fifty recipients, or a hundred messages with the same PDF, keep one copy:
    each recipient's `EmailAttachment` points at it.
    """

    sha256 = models.CharField(max_length=64, primary_key=True)
    size_bytes = models.PositiveIntegerField()
    data = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.sha256[:12]}… ({self.size_bytes} bytes)"


class EmailAttachment(models.Model):
    """One attachment of one message: its name and type, and the shared bytes."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    message = models.ForeignKey(EmailMessage, on_delete=models.CASCADE, related_name="attachments")
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size_bytes = models.PositiveIntegerField()
    blob = models.ForeignKey(AttachmentBlob, on_delete=models.PROTECT, related_name="attachments")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "filename"]

    def __str__(self) -> str:
        return f"{self.filename} ({self.size_bytes} bytes)"

    @property
    def sha256(self) -> str:
        return self.blob_id
