"""Email templates and their immutable versions.

A template holds what stays the same across edits (its key, category, policy and declared
variables); each edit of its wording adds an `EmailTemplateVersion`, so every message can
point at the exact text it was rendered from. Versions are created only through
`notifications.authoring.versions.create_template_version`, which validates them.
"""
import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.db.models import Q

from notifications.exceptions import ImmutableVersionError, InputError, InvalidRecipient
from notifications.jsoninput import check_value as check_json_value
from notifications.models.lanes import Lane
from notifications.channels.email.addresses import parse_addresses


class Category(models.TextChoices):
    """What a template is about, for staff to find it (the desk's filter). Whether it is
    marketing mail is its `Kind`, the one notion the policies read: there is no marketing
    category (migration 0018 made such templates `other`, of kind `marketing`)."""

    BILLING = "billing", _("Billing")
    INCIDENT = "incident", _("Incident")
    ONBOARDING = "onboarding", _("Onboarding")
    RMA = "rma", _("RMA")
    SUPPORT = "support", _("Support")
    ACCOUNT = "account", _("Account")
    OTHER = "other", _("Other")


class Kind(models.TextChoices):
    """Transactional or marketing mail: what the suppression policy reads (an unsubscribe
    stops marketing mail only)."""

    TRANSACTIONAL = "transactional", _("Transactional")
    MARKETING = "marketing", _("Marketing")


def _default_max_attempts() -> int:
    return settings.OUTBOX_RETRY_MAX_ATTEMPTS


class EmailTemplate(models.Model):
    id = models.UUIDField(verbose_name=_("ID"), primary_key=True, default=uuid.uuid4, editable=False)
    key = models.SlugField(verbose_name=_("key"), max_length=100, unique=True, help_text=_("Stable name callers use."))
    name = models.CharField(verbose_name=_("name"), max_length=200, blank=True)
    description = models.TextField(verbose_name=_("description"), blank=True)
    category = models.CharField(verbose_name=_("category"), max_length=50, choices=Category.choices, default=Category.OTHER)
    kind = models.CharField(verbose_name=_("kind"), max_length=20, choices=Kind.choices, default=Kind.TRANSACTIONAL)
    lane = models.CharField(verbose_name=_("lane"), max_length=20, choices=Lane.choices, default=Lane.DEFAULT)
    required_variables = models.JSONField(verbose_name=_("required variables"), default=list, blank=True)
    optional_variables = models.JSONField(
        verbose_name=_("optional variables"),
        default=dict, blank=True, help_text=_("Name → default. A default may use globals: {{ today }}.")
    )
    sensitive_variables = models.JSONField(verbose_name=_("sensitive variables"), default=list, blank=True)
    attachments_allowed = models.BooleanField(verbose_name=_("attachments allowed"), default=False)
    max_attempts = models.PositiveSmallIntegerField(verbose_name=_("maximum attempts"), default=_default_max_attempts)
    default_language = models.CharField(verbose_name=_("default language"), max_length=10, default="fr")
    extra_recipients = models.JSONField(
        verbose_name=_("extra recipients"),
        default=list, blank=True, help_text=_("Addresses that receive every message of this template.")
    )
    sample_variables = models.JSONField(verbose_name=_("sample variables"), default=dict, blank=True)
    layout = models.CharField(
        verbose_name=_("layout"),
        max_length=100, default="default", blank=True, help_text=_("Shared layout; empty for none.")
    )
    is_active = models.BooleanField(verbose_name=_("active"), default=True)
    created_at = models.DateTimeField(verbose_name=_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(verbose_name=_("updated at"), auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("created by"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("updated by"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["key"]
        verbose_name = _("email template")
        verbose_name_plural = _("email templates")
        permissions = [("test_emailtemplate", "Can test-render and test-send templates")]

    def __str__(self) -> str:
        return self.key

    @property
    def declared_variables(self) -> set[str]:
        return set(self.required_variables) | set(self.optional_variables)

    def clean(self) -> None:
        """Refuse what would make every send of this template fail, naming the field."""
        from django.core.exceptions import ValidationError

        errors: dict[str, str] = {}

        def names(value) -> bool:
            return isinstance(value, list) and all(isinstance(n, str) and n.isidentifier() for n in value)

        def name_map(value) -> bool:
            return isinstance(value, dict) and names(list(value))

        if not names(self.required_variables):
            errors["required_variables"] = _("A list of variable names (letters, digits, underscores).")
        if not name_map(self.optional_variables):
            errors["optional_variables"] = _("An object of variable name → default value.")
        elif names(self.required_variables) and set(self.optional_variables) & set(self.required_variables):
            both = ", ".join(sorted(set(self.optional_variables) & set(self.required_variables)))
            errors["optional_variables"] = _("Variables cannot be both required and optional: %(names)s.") % {
                "names": both
            }
        if not names(self.sensitive_variables):
            errors["sensitive_variables"] = _("A list of variable names (letters, digits, underscores).")
        elif not errors:
            undeclared = sorted(set(self.sensitive_variables) - self.declared_variables)
            if undeclared:
                errors["sensitive_variables"] = _("Not declared by the template: %(names)s.") % {
                    "names": ", ".join(undeclared)
                }
        if not name_map(self.sample_variables):
            errors["sample_variables"] = _("An object of variable name → sample value, as a caller would send.")
        if not isinstance(self.extra_recipients, list) or not all(isinstance(a, str) for a in self.extra_recipients):
            errors["extra_recipients"] = _("A list of email addresses.")
        else:
            try:
                parse_addresses(self.extra_recipients, field="extra_recipients")
            except InvalidRecipient as exc:
                errors["extra_recipients"] = exc.message
        if self.max_attempts is not None and self.max_attempts < 1:
            errors["max_attempts"] = _("A message is tried at least 1 time.")
        languages = {code for code, _ in settings.LANGUAGES}
        if self.default_language not in languages:
            errors["default_language"] = _("Unknown language %(language)s; expected one of %(languages)s.") % {
                "language": repr(self.default_language), "languages": ", ".join(sorted(languages))
            }
        if self.layout:
            from notifications.authoring.rendering.environment import layout_exists

            if not layout_exists(self.layout):
                errors["layout"] = _("Layout %(layout)s does not exist in %(directory)s.") % {
                    "layout": repr(self.layout), "directory": settings.EMAIL_LAYOUTS_DIR
                }
        for name in ("required_variables", "optional_variables", "sensitive_variables", "sample_variables",
                     "extra_recipients"):
            if name not in errors:
                try:  # a NUL (PostgreSQL stores none) or nesting past API_MAX_JSON_DEPTH
                    check_json_value(getattr(self, name), field=name, max_depth=settings.API_MAX_JSON_DEPTH)
                except InputError as exc:
                    errors[name] = exc.message
        if errors:
            raise ValidationError(errors)


class EmailTemplateVersion(models.Model):
    """One immutable wording of a template in one language.

    Only `is_active` may change after creation (a newer version takes over); rewriting the
    content would make past messages lie about what they were rendered from.
    """

    CONTENT_FIELDS = ("template_id", "language", "version", "subject", "preheader",
                      "html_content", "text_content", "created_by_id")

    id = models.UUIDField(verbose_name=_("ID"), primary_key=True, default=uuid.uuid4, editable=False)
    template = models.ForeignKey(EmailTemplate, verbose_name=_("template"), on_delete=models.PROTECT, related_name="versions")
    language = models.CharField(verbose_name=_("language"), max_length=10)
    version = models.PositiveIntegerField(verbose_name=_("version"))
    subject = models.TextField(verbose_name=_("subject"))
    preheader = models.TextField(verbose_name=_("preheader"), blank=True)
    html_content = models.TextField(verbose_name=_("HTML content"))
    text_content = models.TextField(verbose_name=_("text content"), blank=True, help_text=_("Generated from the HTML when empty."))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("created by"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(verbose_name=_("created at"), auto_now_add=True)
    is_active = models.BooleanField(verbose_name=_("active"), default=True)

    class Meta:
        ordering = ["template__key", "language", "-version"]
        verbose_name = _("email template version")
        verbose_name_plural = _("email template versions")
        constraints = [
            models.UniqueConstraint(
                fields=["template", "language", "version"], name="unique_template_language_version"
            ),
            models.UniqueConstraint(
                fields=["template", "language"],
                condition=Q(is_active=True),
                name="one_active_version_per_language",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.template.key} [{self.language}] v{self.version}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            update_fields = kwargs.get("update_fields")
            if update_fields is None or set(update_fields) - {"is_active"}:
                raise ImmutableVersionError(
                    str(_("A template version cannot be changed once written; save a new version instead."))
                )
        super().save(*args, **kwargs)


class TemplateVersionActivation(models.Model):
    """A version becoming the active one for its language: saved in the editor, or a rollback.

    Versions never change but their `is_active` flag does; this row keeps who made which
    version active and when, so a rollback is as visible in the history as an edit.
    """

    id = models.BigAutoField(primary_key=True)
    template = models.ForeignKey(
        EmailTemplate, verbose_name=_("template"), on_delete=models.CASCADE, related_name="activations"
    )
    language = models.CharField(verbose_name=_("language"), max_length=10)
    version = models.ForeignKey(
        EmailTemplateVersion, verbose_name=_("version"), on_delete=models.CASCADE, related_name="+"
    )
    previous_version = models.ForeignKey(
        EmailTemplateVersion, verbose_name=_("previous version"), null=True, blank=True,
        on_delete=models.SET_NULL, related_name="+",
    )
    rollback = models.BooleanField(verbose_name=_("rollback"), default=False)
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("activated by"), null=True, blank=True,
        on_delete=models.SET_NULL, related_name="+",
    )
    activated_at = models.DateTimeField(verbose_name=_("activated at"), auto_now_add=True)

    class Meta:
        ordering = ["-activated_at", "-id"]
        verbose_name = _("version activation")
        verbose_name_plural = _("version activations")

    def __str__(self) -> str:
        return f"{self.version} ({self.activated_at:%Y-%m-%d %H:%M})"
