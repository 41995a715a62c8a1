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
from django.utils.translation import gettext_lazy as _

from notifications import crypto
from notifications.exceptions import InvalidRecipient
from notifications.channels.email.addresses import parse_address


class SMTPSecurity(models.TextChoices):
    NONE = "none", _("None (plain text)")
    STARTTLS = "starttls", _("STARTTLS (required)")
    STARTTLS_IF_OFFERED = "starttls_if_offered", _("STARTTLS if the server offers it")
    SSL = "ssl", _("Implicit TLS (SSL, usually port 465)")


class SMTPServerConfigQuerySet(models.QuerySet):
    def usable(self) -> "SMTPServerConfigQuerySet":
        """Active servers in the order they are tried."""
        return self.filter(is_active=True).order_by("order", "name")


class SMTPServerConfig(models.Model):
    """One SMTP server. The password is stored encrypted (`NOTIFICATIONS_ENCRYPTION_KEY`)."""

    id = models.UUIDField(verbose_name=_("ID"), primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(
        verbose_name=_("name"),
        max_length=100, unique=True, help_text=_("Recorded on every message this server sends (sent_via).")
    )
    host = models.CharField(verbose_name=_("host"), max_length=255)
    port = models.PositiveIntegerField(
        verbose_name=_("port"),
        default=587, validators=[MinValueValidator(1), MaxValueValidator(65535)],
        help_text=_("587 for STARTTLS, 465 for implicit TLS, 25 for plain."),
    )
    security = models.CharField(verbose_name=_("security"), max_length=30, choices=SMTPSecurity.choices, default=SMTPSecurity.STARTTLS)
    username = models.CharField(verbose_name=_("username"), max_length=255, blank=True)
    password_encrypted = models.TextField(verbose_name=_("encrypted password"), blank=True, editable=False)
    timeout_seconds = models.PositiveSmallIntegerField(
        verbose_name=_("timeout (seconds)"),
        default=30, validators=[MinValueValidator(1)], help_text=_("Before a silent server counts as down.")
    )
    from_email = models.EmailField(
        verbose_name=_("sender address"),
        blank=True, help_text=_("Sender address used through this server; empty keeps SMTP_FROM_EMAIL.")
    )
    order = models.PositiveIntegerField(verbose_name=_("order"), default=0, db_index=True, help_text=_("Lowest is tried first."))
    is_active = models.BooleanField(verbose_name=_("active"), default=True)
    created_at = models.DateTimeField(verbose_name=_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(verbose_name=_("updated at"), auto_now=True)

    objects = SMTPServerConfigQuerySet.as_manager()

    class Meta:
        ordering = ["order", "name"]
        verbose_name = _("SMTP server")
        verbose_name_plural = _("SMTP servers")

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
