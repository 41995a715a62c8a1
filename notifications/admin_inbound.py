"""Inbound email in the admin: listed, searched and read by Auditors (view permission),
never changed. The HTML is shown only in a sandboxed frame (`htmlpreview`)."""
from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from notifications.admin_readonly import ReadOnlyAdmin, ReadOnlyInline
from notifications.htmlpreview import sandboxed_iframe
from notifications.models import InboundAttachment, InboundEmail


class InboundAttachmentInline(ReadOnlyInline):
    """Metadata only: the bytes are never rendered into a page."""

    model = InboundAttachment
    fields = ("filename", "content_type", "content_id", "size_bytes", "sha256")


@admin.register(InboundEmail)
class InboundEmailAdmin(ReadOnlyAdmin):
    list_display = ("received_at", "from_email", "recipients", "subject", "provider", "spam_score", "raw_size")
    list_filter = ("provider", "spam_detected")
    search_fields = ("from_email", "subject", "envelope_sender", "envelope_recipient", "text", "=provider_message_id")
    date_hierarchy = "received_at"
    inlines = [InboundAttachmentInline]
    fields = ("received_at", "provider", "provider_message_id", "from_email", "envelope_sender",
              "envelope_recipient", "to", "cc", "subject", "spam_score", "spam_detected", "raw_size", "text",
              "html_preview", "headers")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).defer("html", "headers")

    @admin.display(description=_("To"))
    def recipients(self, obj: InboundEmail) -> str:
        return ", ".join(obj.to)

    @admin.display(description=_("HTML"))
    def html_preview(self, obj: InboundEmail):
        if not obj.html:
            return "—"
        return sandboxed_iframe(obj.html, title=_("The email's HTML, sandboxed"))
