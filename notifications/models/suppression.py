"""The suppression list: addresses no mail (or no marketing mail) goes to any more.

A permanent bounce or a complaint suppresses an address for all mail; an unsubscribe for
marketing mail only. An address is keyed with its kind (`address_kind`: `email` today, a
phone number for the SMS channel next), as each channel normalises it. A suppression is never deleted: staff lift it, and the row keeps who
lifted it and when, so the list's history stays auditable.
"""
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from notifications.core.addresses import address_key
from notifications.models.events import DeliveryEvent


class Scope(models.TextChoices):
    ALL = "all", _("All mail")
    MARKETING = "marketing", _("Marketing mail")


class Reason(models.TextChoices):
    BOUNCE = "bounce", _("Permanent bounce")
    COMPLAINT = "complaint", _("Complaint")
    UNSUBSCRIBE = "unsubscribe", _("Unsubscribed")
    MANUAL = "manual", _("Added by staff")


class SuppressionQuerySet(models.QuerySet):
    def active(self) -> "SuppressionQuerySet":
        return self.filter(lifted_at__isnull=True)


class Suppression(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    address_kind = models.CharField(
        max_length=20, default="email", db_default="email",
        help_text=_("What kind of address it is (email; a phone number next): each channel's key on the list."),
    )
    address = models.EmailField(max_length=254, help_text=_("Lower case."))
    scope = models.CharField(max_length=20, choices=Scope.choices, default=Scope.ALL)
    reason = models.CharField(max_length=20, choices=Reason.choices)
    detail = models.TextField(blank=True, help_text=_("What the provider said, or the staff's note."))
    source_event = models.ForeignKey(
        DeliveryEvent, null=True, blank=True, on_delete=models.SET_NULL, related_name="suppressions",
        help_text=_("The delivery event that caused it."),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text=_("The staff member who added it by hand."),
    )
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = SuppressionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("suppression")
        verbose_name_plural = _("suppressions")
        constraints = [
            models.UniqueConstraint(
                fields=["address_kind", "address", "scope"], condition=Q(lifted_at__isnull=True),
                name="one_active_suppression",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.address} ({self.scope}, {self.reason})"

    def save(self, *args, **kwargs) -> None:
        self.address = address_key(self.address)
        super().save(*args, **kwargs)

    @property
    def is_active(self) -> bool:
        return self.lifted_at is None
