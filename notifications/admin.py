"""Admin registrations: templates, immutable versions, the read-only audit trail, SMTP servers
(the messages themselves: `admin_messages`).

Saving a version in the admin goes through the same service (and validation) as the
API: an "edit" is always a new version. SMTP passwords are write-only: the form never
renders the stored one (nor its ciphertext) back.
"""
from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import models
from django.forms.fields import InvalidJSONInput
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from notifications import jsoninput
from notifications.admin_readonly import ReadOnlyAdmin
from notifications.exceptions import InputError, NotificationError
from notifications.models import (
    APIKey,
    DeliveryEvent,
    EmailTemplate,
    EmailTemplateVersion,
    IdempotencyRecord,
    SMTPServerConfig,
)
from notifications.services.templates import create_template_version, validate_version_content

FROM_VERSION = "from_version"


class VersionInline(admin.TabularInline):
    model = EmailTemplateVersion
    fields = ("language", "version", "subject", "is_active", "created_by", "created_at", "edit")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description=_("Edit"))
    def edit(self, version: EmailTemplateVersion) -> str:
        """An edit is a new version: this opens the add form filled with this one's content."""
        url = reverse("admin:notifications_emailtemplateversion_add")
        return format_html(
            '<a href="{}?{}">{}</a>', url, urlencode({FROM_VERSION: version.pk}), gettext("New version from this one")
        )


class BoundedJSONField(forms.JSONField):
    """Django's JSON form field, refusing what `json.loads()` would recurse too deep on and
    what PostgreSQL cannot store (a NUL), as a form error instead of a 500."""

    def to_python(self, value):
        max_depth = settings.API_MAX_JSON_DEPTH
        if self._too_deep(value):
            raise ValidationError(
                gettext("Nested deeper than %(max_depth)s levels (API_MAX_JSON_DEPTH).") % {"max_depth": max_depth}
            )
        converted = super().to_python(value)
        try:
            jsoninput.check_value(converted, field="value", max_depth=max_depth)
        except InputError as exc:
            raise ValidationError(exc.message) from None
        return converted

    def bound_data(self, data, initial):
        """Shown back as typed when refused: parsing it again to redisplay would recurse as deep."""
        if self._too_deep(data):
            return InvalidJSONInput(data)
        return super().bound_data(data, initial)

    @staticmethod
    def _too_deep(value) -> bool:
        return isinstance(value, str) and jsoninput.nesting_depth(value) > settings.API_MAX_JSON_DEPTH


@admin.register(EmailTemplate)
class EmailTemplateAdmin(admin.ModelAdmin):
    formfield_overrides = {models.JSONField: {"form_class": BoundedJSONField}}
    list_display = ("key", "name", "category", "kind", "lane", "max_attempts", "is_active", "updated_at")
    list_filter = ("category", "kind", "lane", "is_active")
    search_fields = ("key", "name", "description")
    readonly_fields = ("created_at", "updated_at", "created_by", "updated_by")
    inlines = [VersionInline]

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            obj.created_by = request.user
        obj.updated_by = request.user
        super().save_model(request, obj, form, change)


class VersionForm(forms.ModelForm):
    # A choice, not free text: the service refuses other languages, after validation (a 500).
    language = forms.ChoiceField(label=_("language"), choices=lambda: settings.LANGUAGES)

    class Meta:
        model = EmailTemplateVersion
        fields = ("template", "language", "subject", "preheader", "html_content", "text_content")
        # The subject and preheader are one line each: a one-line input says so.
        widgets = {"subject": forms.TextInput(attrs={"size": 100}), "preheader": forms.TextInput(attrs={"size": 100})}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name in ("html_content", "text_content"):  # stored as typed, as the API stores them
            if name in self.fields:  # absent on the read-only view of a saved version
                self.fields[name].strip = False

    def clean(self) -> dict:
        data = super().clean()
        template = data.get("template")
        if template is not None and not self.errors:
            try:
                validate_version_content(
                    template=template,
                    subject=data.get("subject", ""),
                    html_content=data.get("html_content", ""),
                    text_content=data.get("text_content", ""),
                    preheader=data.get("preheader", ""),
                )
            except NotificationError as exc:
                field = exc.field if exc.field in self.fields else None
                raise ValidationError({field: exc.message} if field else exc.message) from None
        return data


@admin.register(EmailTemplateVersion)
class EmailTemplateVersionAdmin(admin.ModelAdmin):
    """Adding saves a new version; existing versions are shown read-only."""

    form = VersionForm
    list_display = ("template", "language", "version", "subject", "is_active", "created_by", "created_at")
    list_filter = ("language", "is_active", "template__category")
    search_fields = ("template__key", "subject")
    list_select_related = ("template", "created_by")

    def get_changeform_initial_data(self, request) -> dict:
        """`?from_version=<id>` starts the new version from that one's content, not from blank."""
        initial = super().get_changeform_initial_data(request)
        source = request.GET.get(FROM_VERSION)
        if source:
            try:
                version = EmailTemplateVersion.objects.get(pk=source)
            except (EmailTemplateVersion.DoesNotExist, ValidationError, ValueError):
                messages.warning(request, gettext("The version to start from does not exist; the form starts empty."))
                return initial
            initial.update(
                template=version.template_id, language=version.language, subject=version.subject,
                preheader=version.preheader, html_content=version.html_content, text_content=version.text_content,
            )
        return initial

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        data = form.cleaned_data
        version = create_template_version(
            template=data["template"],
            language=data["language"],
            subject=data["subject"],
            preheader=data.get("preheader", ""),
            html_content=data["html_content"],
            text_content=data.get("text_content", ""),
            created_by=request.user,
        )
        # The admin's redirect and log entry use `obj`: point it at the saved row.
        obj.pk, obj.version, obj._state.adding = version.pk, version.version, False


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
    search_fields = ("=message__id", "message__recipient_email", "recipient", "=provider_message_id",
                     "=provider_event_id")
    list_select_related = ("message",)
    readonly_fields = ("message", "event_type", "provider", "recipient", "provider_event_id", "provider_message_id",
                       "occurred_at", "detail", "bounce_type", "bounce_subtype", "pending", "payload", "created_at")


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "scope", "key", "response_status")
    search_fields = ("key", "scope")
    readonly_fields = ("scope", "key", "request_hash", "response_status", "response_body", "created_at")


# Registered in modules of their own: the suppression list and inbound email (issue 11), the
# message audit desk (issue 12).
from notifications import admin_inbound, admin_messages, admin_suppression  # noqa: E402, F401
