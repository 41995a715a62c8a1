"""Admin registrations: the read-only audit trail, API keys (and the failed-authentication
lockouts, listed and lifted beside them), SMTP servers.

The messages and their attachments are in `admin_messages` (the audit desk).
Templates and their versions are in `admin_templates` (the template editor). SMTP passwords are write-only: the form never
renders the stored one (nor its ciphertext) back.
"""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from notifications.access import lockout
from notifications.admin.readonly import ReadOnlyAdmin
from notifications.models import (
    APIKey,
    DeliveryEvent,
    IdempotencyRecord,
    SMTPServerConfig,
)


class APIKeyForm(forms.ModelForm):
    class Meta:
        model = APIKey
        fields = ("user", "name", "is_test")


@admin.register(APIKey)
class APIKeyAdmin(admin.ModelAdmin):
    """Keys are created here or with `create_api_key`; the secret is shown once, then only its prefix."""

    form = APIKeyForm
    list_display = ("name", "user", "prefix", "is_test", "created_at", "last_used_at", "revoked_at")
    list_filter = ("is_test", "revoked_at")
    search_fields = ("name", "prefix", "user__username")
    actions = ["revoke"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return ("user", "name", "is_test", "prefix", "created_at", "last_used_at", "revoked_at")

    def save_model(self, request, obj, form, change) -> None:
        if change:
            return
        key, raw = APIKey.generate(user=obj.user, name=obj.name, is_test=obj.is_test)
        obj.pk, obj._state.adding = key.pk, False
        self.message_user(
            request, gettext("New API key (shown only now, store it): %(key)s") % {"key": raw}, messages.WARNING
        )

    @admin.action(description=_("Revoke selected keys"), permissions=["change"])
    def revoke(self, request, queryset) -> None:
        for key in queryset.filter(revoked_at__isnull=True):
            key.revoke()
        self.message_user(request, gettext("Revoked."))

    change_list_template = "admin/notifications/apikey/change_list.html"  # links to the lockouts

    def changelist_view(self, request, extra_context=None):
        if self.has_change_permission(request):
            extra_context = {**(extra_context or {}), "lockouts_label": gettext("Lockouts")}
        return super().changelist_view(request, extra_context)

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [path("lockouts/", wrap(self.lockouts_view), name="notifications_apikey_lockouts"),
                *super().get_urls()]

    def lockouts_view(self, request):
        """The failed-authentication lockouts in force, each lifted with a button (as `manage.py unlock`).

        Beside the keys because whoever manages keys (`change_apikey`: Administrators) is who
        knows whether a run of wrong keys or passwords was a deploy's stale secret.
        """
        if not self.has_change_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            scope = request.POST.get("scope", "")
            if scope not in lockout.LIMIT_SETTINGS:
                return HttpResponseBadRequest(gettext("Unknown lockout scope."))
            who = {"ip": request.POST.get("ip", ""), "username": request.POST.get("username", "")}
            if lockout.lift(scope=scope, **who):
                self.message_user(request, gettext("Lockout lifted: %(scope)s %(username)s %(ip)s")
                                  % {"scope": scope, **who})
            return redirect("admin:notifications_apikey_lockouts")
        return TemplateResponse(request, "admin/notifications/apikey/lockouts.html", {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": gettext("Failed-authentication lockouts"),
            "lockouts": lockout.current_lockouts(),
            "columns": [gettext("scope"), gettext("username"), gettext("address"), gettext("seconds left")],
            "lift_label": gettext("Lift"),
            "none_label": gettext("No lockout in force."),
        })


class SMTPServerConfigForm(forms.ModelForm):
    """The stored password is never sent to the browser; an empty field keeps it."""

    password = forms.CharField(
        label=_("Password"),
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_("Write-only: stored encrypted and never shown. Leave empty to keep the stored password."),
    )
    clear_password = forms.BooleanField(required=False, label=_("Remove the stored password"))

    class Meta:
        model = SMTPServerConfig
        fields = ("name", "host", "port", "security", "username", "timeout_seconds", "from_email", "order",
                  "is_active")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk and self.instance.password_encrypted:
            self.fields["password"].help_text = _(
                "A password is stored (encrypted, never shown). Leave empty to keep it, or type a new one."
            )

    def clean(self) -> dict:
        data = super().clean()
        if data.get("password") and data.get("clear_password"):
            raise ValidationError(gettext("Either give a new password or remove the stored one, not both."))
        return data

    def save(self, commit: bool = True) -> SMTPServerConfig:
        config = super().save(commit=False)
        if self.cleaned_data.get("clear_password"):
            config.set_password("")
        elif self.cleaned_data.get("password"):
            config.set_password(self.cleaned_data["password"])
        if commit:
            config.save()
        return config


@admin.register(SMTPServerConfig)
class SMTPServerConfigAdmin(admin.ModelAdmin):
    """Servers for DatabaseSMTPBackend: the active one with the lowest order sends, the next take over."""

    form = SMTPServerConfigForm
    list_display = ("name", "host", "port", "security", "username", "password_set", "order", "is_active",
                    "updated_at")
    list_editable = ("order", "is_active")
    list_filter = ("is_active", "security")
    search_fields = ("name", "host", "username")
    fieldsets = (
        (None, {"fields": ("name", "order", "is_active")}),
        (_("Connection"), {"fields": ("host", "port", "security", "timeout_seconds")}),
        (_("Login"), {"fields": ("username", "password", "clear_password")}),
        (_("Sender"), {"fields": ("from_email",)}),
    )

    @admin.display(boolean=True, description=_("Password"))
    def password_set(self, obj: SMTPServerConfig) -> bool:
        return obj.has_password


@admin.register(DeliveryEvent)
class DeliveryEventAdmin(ReadOnlyAdmin):
    """Every provider event, unmatched ones (no message) included: filter "By message: Empty"."""

    list_display = ("occurred_at", "event_type", "provider", "recipient", "message", "pending", "detail")
    list_filter = ("event_type", "provider", ("message", admin.EmptyFieldListFilter), "pending")
    search_fields = ("=message__id", "message__address", "recipient", "=provider_message_id",
                     "=provider_event_id")
    list_select_related = ("message",)
    readonly_fields = ("message", "event_type", "provider", "recipient", "provider_event_id", "provider_message_id",
                       "occurred_at", "detail", "bounce_type", "bounce_subtype", "pending", "payload", "created_at")


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "scope", "key", "response_status")
    search_fields = ("key", "scope")
    readonly_fields = ("scope", "key", "request_hash", "response_status", "response_body", "created_at")


# Registered in modules of their own (issue 11): the suppression list and inbound email.
from notifications.admin import inbound, suppression  # noqa: E402, F401

# The template admin, as the template editor, and the audit desk (issue 12).
from notifications.admin import desk, editor  # noqa: E402, F401
