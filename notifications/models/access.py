"""API keys and idempotency records: who may call the API, and what they already asked.

A key is shown once when created and stored only as a SHA-256 digest: keys are 256 bits
of randomness, so a fast digest is as strong as a slow one and lets a request find its
key with one indexed lookup.
"""
import hashlib
import secrets
import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils import timezone

KEY_PREFIXES = {False: "ntf_live_", True: "ntf_test_"}


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class APIKeyQuerySet(models.QuerySet):
    def active(self):
        return self.filter(revoked_at__isnull=True, user__is_active=True)


class APIKey(models.Model):
    """A bearer key acting with its user's permissions; a test key never delivers (003)."""

    id = models.UUIDField(verbose_name=_("ID"), primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(verbose_name=_("name"), max_length=100, blank=True)
    prefix = models.CharField(verbose_name=_("prefix"), max_length=20, help_text=_("The key's first characters, to recognise it."))
    key_hash = models.CharField(verbose_name=_("key hash"), max_length=64, unique=True, editable=False)
    is_test = models.BooleanField(verbose_name=_("test"), default=False, help_text=_("Renders and audits, never delivers."))
    created_at = models.DateTimeField(verbose_name=_("created at"), auto_now_add=True)
    last_used_at = models.DateTimeField(verbose_name=_("last used at"), null=True, blank=True)
    revoked_at = models.DateTimeField(verbose_name=_("revoked at"), null=True, blank=True)

    objects = APIKeyQuerySet.as_manager()

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name or 'key'} ({self.prefix}…, {self.user})"

    @classmethod
    def generate(cls, *, user, name: str = "", is_test: bool = False) -> tuple["APIKey", str]:
        """Create a key; returns it with the raw secret, which is never stored."""
        raw = KEY_PREFIXES[is_test] + secrets.token_urlsafe(32)
        key = cls.objects.create(
            user=user, name=name, is_test=is_test, prefix=raw[:13], key_hash=hash_key(raw)
        )
        return key, raw

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def revoke(self) -> None:
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])


class IdempotencyRecord(models.Model):
    """The first successful answer to a request made with an `Idempotency-Key`.

    Unique per (scope, key): a concurrent duplicate blocks on the unique index until the
    first request's transaction ends, then reads its answer.
    """

    scope = models.CharField(verbose_name=_("scope"), max_length=100, help_text=_("The API key (or user) the key belongs to."))
    key = models.CharField(verbose_name=_("key"), max_length=255)
    request_hash = models.CharField(verbose_name=_("request hash"), max_length=64)
    response_status = models.PositiveSmallIntegerField(verbose_name=_("response status"), default=0)
    response_body = models.JSONField(verbose_name=_("response body"), default=dict)
    created_at = models.DateTimeField(verbose_name=_("created at"), auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="unique_idempotency_key")]
        verbose_name = _("idempotency record")
        verbose_name_plural = _("idempotency records")

    def __str__(self) -> str:
        return f"{self.scope}:{self.key}"
