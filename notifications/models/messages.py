"""The audit trail: one `Message` row per recipient, whatever its channel, and its attachments.

A row holds exactly what was (or will be) sent: the rendering is done once, when the
message is queued, so retries and resends never render differently and the audit never
depends on a template that may since have changed.
"""
import uuid

from django.conf import settings
from django.db import models
from django.db.models.functions import Upper
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from notifications import audit_text
from notifications.formatting import number

from notifications.models.lanes import Lane
from notifications.models.templates import EmailTemplateVersion


def size_text(size: int) -> str:
    """A size in bytes, in the reader's language and digit grouping ("15 octets", "1 000 000 bytes")."""
    return ngettext("%(size)s byte", "%(size)s bytes", size) % {"size": number(size)}


class Status(models.TextChoices):
    SCHEDULED = "scheduled", _("Scheduled")
    QUEUED = "queued", _("Queued")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    DELIVERED = "delivered", _("Delivered")
    BOUNCED = "bounced", _("Bounced")
    COMPLAINT = "complaint", _("Complaint")
    FAILED = "failed", _("Failed")
    SUPPRESSED = "suppressed", _("Suppressed")
    RATE_LIMITED = "rate_limited", _("Rate limited")
    CANCELLED = "cancelled", _("Cancelled")
    EXPIRED = "expired", _("Expired")


class BounceType(models.TextChoices):
    PERMANENT = "permanent", _("Permanent")
    TEMPORARY = "temporary", _("Temporary")


class Message(models.Model):
    id = models.UUIDField(verbose_name=_("ID"), primary_key=True, default=uuid.uuid4, editable=False)
    template_key = models.CharField(verbose_name=_("template key"), max_length=100, blank=True)
    template_version = models.ForeignKey(
        EmailTemplateVersion, verbose_name=_("template version"), null=True, blank=True, on_delete=models.PROTECT, related_name="messages"
    )
    language = models.CharField(verbose_name=_("language"), max_length=10, blank=True)
    # Which channel delivers it (notifications.core's registry): every channel's rows share
    # the outbox, so the claim, retries, sweep and audit read one table. Email, the first
    # channel, is the default of the column too (rows written by raw SQL, and the rows that
    # were there before the column: adding it is a catalogue change on PostgreSQL, no rewrite).
    channel = models.CharField(verbose_name=_("channel"), max_length=20, default="email", db_default="email")
    # The recipient's address in its channel's own kind: an email address, a phone number,
    # a device token. Long enough for any of them (a web push endpoint is a URL); each
    # channel checks its own kind before a row is written. Still named "recipient address"
    # (and `to` in the API): it is the same thing for email.
    address = models.CharField(verbose_name=_("recipient address"), max_length=512)
    from_email = models.CharField(verbose_name=_("sender address"), max_length=320)
    reply_to = models.JSONField(verbose_name=_("Reply-To"), default=list, blank=True)
    cc = models.JSONField(verbose_name=_("Cc"), default=list, blank=True)
    bcc = models.JSONField(verbose_name=_("Bcc"), default=list, blank=True)
    subject = models.TextField(verbose_name=_("subject"))
    html_content = models.TextField(verbose_name=_("HTML content"), blank=True)
    text_content = models.TextField(verbose_name=_("text content"), blank=True)
    variables = models.JSONField(verbose_name=_("variables"), default=dict, blank=True, help_text=_("As given, sensitive ones masked."))
    is_masked = models.BooleanField(
        verbose_name=_("masked"),
        default=False, help_text=_("Subject and contents are stored with the sensitive variables masked.")
    )
    sealed_content = models.TextField(
        verbose_name=_("sealed content"),
        blank=True, editable=False,
        help_text=_("The unmasked rendering, encrypted; deleted once the message is sent or failed."),
    )
    mime = models.BinaryField(
        verbose_name=_("MIME"),
        blank=True, default=b"",
        help_text=_(
            "The RFC 5322 bytes as sent over SMTP, built at enqueue; empty for masked messages "
            "(and rows queued before it existed), which are built at delivery."
        ),
    )
    attachments_count = models.PositiveIntegerField(verbose_name=_("attachments count"), default=0)
    status = models.CharField(verbose_name=_("status"), max_length=20, choices=Status.choices, default=Status.QUEUED)
    lane = models.CharField(verbose_name=_("lane"), max_length=20, choices=Lane.choices, default=Lane.DEFAULT)
    attempts = models.PositiveSmallIntegerField(verbose_name=_("attempts"), default=0)
    max_attempts = models.PositiveSmallIntegerField(verbose_name=_("maximum attempts"), default=1)
    next_attempt_at = models.DateTimeField(
        verbose_name=_("next attempt at"),
        null=True, blank=True,
        help_text=_("While queued or scheduled: when it is next due (its enqueue, its send_at, or its retry time)."),
    )
    send_at = models.DateTimeField(verbose_name=_("send at"), null=True, blank=True)
    sent_at = models.DateTimeField(verbose_name=_("sent at"), null=True, blank=True)
    delivered_at = models.DateTimeField(verbose_name=_("delivered at"), null=True, blank=True)
    bounce_type = models.CharField(verbose_name=_("bounce type"), max_length=20, choices=BounceType.choices, blank=True)
    bounce_subtype = models.CharField(verbose_name=_("bounce subtype"), max_length=50, blank=True)
    error_message = models.TextField(
        verbose_name=_("error message"), blank=True,
        help_text=_("In English, as written; shown from error_code when there is one."),
    )
    error_code = models.CharField(
        verbose_name=_("error code"), max_length=60, blank=True, default="", db_default="",
        help_text=_("The stable code of the error (notifications.audit_text), shown translated."),
    )
    error_params = models.JSONField(verbose_name=_("error parameters"), null=True, blank=True, default=None)
    provider_message_id = models.CharField(verbose_name=_("provider message ID"), max_length=255, blank=True)
    sent_via = models.CharField(
        verbose_name=_("sent via"),
        max_length=100, blank=True,
        help_text=_("What sent it: the SMTP server's name in the admin, the ESP, or host:port."),
    )
    provider = models.CharField(
        verbose_name=_("provider key"),
        max_length=50, blank=True, default="", db_default="",  # rows written by raw SQL too
        help_text=_(
            "Which provider took it, derived from the backend that sent it (smtp, amazon_ses, sendgrid, "
            "simulator, ...): only that provider's webhook events apply to it."
        ),
    )
    source_endpoint = models.CharField(verbose_name=_("source endpoint"), max_length=100, default="internal")
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("sent by"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    idempotency_key = models.CharField(verbose_name=_("idempotency key"), max_length=255, blank=True)
    resent_from = models.ForeignKey(
        "self", verbose_name=_("resent from"), null=True, blank=True, on_delete=models.SET_NULL,
        related_name="resends", db_index=False, help_text=_("The message this one resends."),
    )
    is_test = models.BooleanField(verbose_name=_("test"), default=False, help_text=_("Sent with a test key: simulated, never delivered."))
    created_at = models.DateTimeField(verbose_name=_("created at"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(verbose_name=_("updated at"), auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("email message")
        verbose_name_plural = _("email messages")
        # Every status change rewrites a row of every index (a status is indexed, so no HOT
        # update), twice per message: plain indexes, without Django's extra `_like` copies
        # for LIKE queries that nothing makes, and as few as the queries need. The audit
        # desk's list is newest first: its status, template and lane filters read
        # `message_status_created`, `message_template_key` and `message_lane_created`
        # backwards from the newest row, however rare the value (and its bounded count reads
        # only that value's rows); `status` alone (the sweep) is served by the first.
        # Due rows are found through `message_lane_due`.
        indexes = [
            models.Index(fields=["status", "created_at"], name="message_status_created"),
            models.Index(fields=["template_key", "created_at"], name="message_template_key"),
            models.Index(fields=["lane", "created_at"], name="message_lane_created"),
            # The audit desk's search is exact and case-insensitive (`iexact`, which PostgreSQL
            # compiles to `UPPER(col::text) = UPPER(%s)`, as does the API's `?to=`): the index
            # is on that expression, so a plain index on the column would serve nobody.
            models.Index(Upper("address"), name="message_address"),
            models.Index(fields=["provider_message_id"], name="message_provider_id"),
            # The drain's claim: the due rows of one lane, oldest due first (services.lifecycle).
            models.Index(
                fields=["lane", "next_attempt_at"], name="message_lane_due",
                condition=models.Q(status__in=["queued", "scheduled"]),
            ),
            # A message's resends (the admin's message page); partial: nearly every row has
            # none, so the index costs a send nothing.
            models.Index(fields=["resent_from"], name="message_resent_from",
                         condition=models.Q(resent_from__isnull=False)),
        ]
        permissions = [
            ("send_email", "Can send email"),
            ("cancel_message", "Can cancel a scheduled or queued email"),
            ("resend_message", "Can resend an email or retry a failed one"),
        ]

    def __str__(self) -> str:
        return f"{self.template_key or _('simple')} → {self.address} ({self.get_status_display()})"

    @property
    def error_text(self) -> str:
        """The error in the reader's language (from its code), or its stored text for an old row."""
        return audit_text.render(self.error_code, self.error_params, fallback=self.error_message)


class DeliveryAttempt(models.Model):
    """One try at handing a message to the mail server or ESP, whatever came of it.

    A server outage (unreachable, no greeting, no TLS, no active server) is not an attempt
    of the message: its batch is put back uncounted, so it has no row here.
    """

    class Outcome(models.TextChoices):
        SENT = "sent", _("Sent")
        TRANSIENT = "transient", _("Transient failure")
        PERMANENT = "permanent", _("Permanent failure")
        UNKNOWN = "unknown", _("Outcome unknown")

    id = models.BigAutoField(verbose_name=_("ID"), primary_key=True)
    message = models.ForeignKey(Message, verbose_name=_("message"), on_delete=models.CASCADE, related_name="delivery_attempts")
    number = models.PositiveSmallIntegerField(verbose_name=_("number"), help_text=_("1 for the first attempt."))
    started_at = models.DateTimeField(verbose_name=_("started at"))
    finished_at = models.DateTimeField(verbose_name=_("finished at"))
    outcome = models.CharField(verbose_name=_("outcome"), max_length=20, choices=Outcome.choices)
    error = models.TextField(verbose_name=_("error"), blank=True, help_text=_("In English, as written."))
    error_code = models.CharField(verbose_name=_("error code"), max_length=60, blank=True, default="", db_default="")
    error_params = models.JSONField(verbose_name=_("error parameters"), null=True, blank=True, default=None)
    # The message's name (`sent_via`), for what this attempt was handed to; labelled "server" as before.
    sent_via = models.CharField(verbose_name=_("server"), max_length=100, blank=True, help_text=_("What it was handed to (sent_via)."))

    class Meta:
        ordering = ["message", "number", "started_at"]
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")

    def __str__(self) -> str:
        return _("attempt %(number)s of %(message)s: %(outcome)s") % {
            "number": self.number, "message": self.message_id, "outcome": self.get_outcome_display()}

    @property
    def error_text(self) -> str:
        """The error in the reader's language (from its code), or its stored text for an old row."""
        return audit_text.render(self.error_code, self.error_params, fallback=self.error)


class AttachmentBlob(models.Model):
    """An attachment's bytes, stored once per content (SHA-256).

    A message to fifty recipients, or a hundred messages with the same PDF, keep one copy:
    each recipient's `EmailAttachment` points at it.
    """

    sha256 = models.CharField(verbose_name=_("SHA-256"), max_length=64, primary_key=True)
    size_bytes = models.PositiveIntegerField(verbose_name=_("size (bytes)"))
    data = models.BinaryField(verbose_name=_("data"))
    created_at = models.DateTimeField(verbose_name=_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("attachment content")
        verbose_name_plural = _("attachment contents")

    def __str__(self) -> str:
        return f"{self.sha256[:12]}… ({size_text(self.size_bytes)})"


class EmailAttachment(models.Model):
    """One attachment of one message: its name and type, and the shared bytes."""

    id = models.UUIDField(verbose_name=_("ID"), primary_key=True, default=uuid.uuid4, editable=False)
    message = models.ForeignKey(Message, verbose_name=_("message"), on_delete=models.CASCADE, related_name="attachments")
    filename = models.CharField(verbose_name=_("filename"), max_length=255)
    content_type = models.CharField(verbose_name=_("content type"), max_length=100)
    size_bytes = models.PositiveIntegerField(verbose_name=_("size (bytes)"))
    blob = models.ForeignKey(AttachmentBlob, verbose_name=_("blob"), on_delete=models.PROTECT, related_name="attachments")
    created_at = models.DateTimeField(verbose_name=_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["created_at", "filename"]
        verbose_name = _("email attachment")
        verbose_name_plural = _("email attachments")

    def __str__(self) -> str:
        return f"{self.filename} ({size_text(self.size_bytes)})"

    @property
    def sha256(self) -> str:
        return self.blob_id
