"""SMTP servers configured in the admin, used by `notifications.backends.DatabaseSMTPBackend`.

The active server with the lowest `order` sends; the next ones take over when it cannot be
reached or refuses the login (001's "the config with the lowest order wins", plus
failover). The backend reads the rows for every message, so an edit in the admin applies
to the next message without a restart.
"""
import uuid

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from notifications import crypto
from notifications.exceptions import InvalidRecipient
from notifications.recipients import parse_address


class SMTPSecurity(models.TextChoices):
    NONE = "none", "None (plain text)"
    STARTTLS = "starttls", "STARTTLS (required)"
    STARTTLS_IF_OFFERED = "starttls_if_offered", "STARTTLS if the server offers it"
    SSL = "ssl", "Implicit TLS (SSL, usually port 465)"


class SMTPServerConfigQuerySet(models.QuerySet):
    def usable(self) -> "SMTPServerConfigQuerySet":
        """Active servers in the order they are tried."""
        return self.filter(is_active=True).order_by("order", "name")


class SMTPServerConfig(models.Model):
    """One SMTP server. The password is stored encrypted (`NOTIFICATIONS_ENCRYPTION_KEY`)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(
        max_length=100, unique=True, help_text="Recorded on every message this server sends (sent_via)."
    )
    host = models.CharField(max_length=255)
    port = models.PositiveIntegerField(
        default=587, validators=[MinValueValidator(1), MaxValueValidator(65535)],
        help_text="587 for STARTTLS, 465 for implicit TLS, 25 for plain.",
    )
    security = models.CharField(max_length=30, choices=SMTPSecurity.choices, default=SMTPSecurity.STARTTLS)
    username = models.CharField(max_length=255, blank=True)
    password_encrypted = models.TextField(blank=True, editable=False)
    timeout_seconds = models.PositiveSmallIntegerField(
        default=30, validators=[MinValueValidator(1)], help_text="Before a silent server counts as down."
    )
    from_email = models.EmailField(
        blank=True, help_text="Sender address used through this server; empty keeps SMTP_FROM_EMAIL."
    )
    order = models.PositiveIntegerField(default=0, db_index=True, help_text="Lowest is tried first.")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = SMTPServerConfigQuerySet.as_manager()

    class Meta:
        ordering = ["order", "name"]
        verbose_name = "SMTP server"
        verbose_name_plural = "SMTP servers"

    def __str__(self) -> str:
        return f"{self.name} ({self.address})"

    def clean(self) -> None:
        """The sender address goes into every From header and MAIL FROM: the one address parser checks it."""
        if self.from_email:
            try:
                self.from_email = parse_address(self.from_email, field="from_email")
            except InvalidRecipient as exc:
                raise ValidationError({"from_email": exc.message}) from None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def has_password(self) -> bool:
        return bool(self.password_encrypted)

    def set_password(self, raw_password: str) -> None:
        """Store `raw_password` encrypted; an empty one clears it."""
        self.password_encrypted = crypto.encrypt(raw_password) if raw_password else ""

    def get_password(self) -> str:
        """The decrypted password; `DecryptionError` when the key cannot open it."""
        return crypto.decrypt(self.password_encrypted) if self.password_encrypted else ""

    def connection_fingerprint(self) -> tuple:
        """What a kept-open connection depends on: when it changes, the connection is reopened."""
        return (self.host, self.port, self.security, self.username, self.password_encrypted, self.timeout_seconds)
