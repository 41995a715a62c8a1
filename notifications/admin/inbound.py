"""Inbound email in the admin: listed, searched and read by Auditors (view permission),
never changed. The HTML is shown only in a sandboxed frame (`htmlpreview`).

A message may be 30 MB (`EMAIL_INBOUND_MAX_BYTES`): its text and HTML are shown up to
`EMAIL_INBOUND_PREVIEW_CHARS` each, cut in the database (never read whole for the page),
with a link that downloads the whole part."""
from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models.functions import Length, Substr
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from notifications.admin.readonly import ReadOnlyAdmin, ReadOnlyInline
from notifications.admin.htmlpreview import sandboxed_iframe
from notifications.models import InboundAttachment, InboundEmail
from notifications.formatting import number


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
              "envelope_recipient", "to", "cc", "subject", "spam_score", "spam_detected", "raw_size", "text_preview",
              "html_preview", "headers")
    readonly_fields = fields

    PARTS = ("text", "html")

    def get_queryset(self, request):
        return super().get_queryset(request).defer("text", "html", "headers")

    def get_urls(self):
        return [
            path("<uuid:pk>/part/<str:part>/", self.admin_site.admin_view(self.download_part),
                 name="notifications_inboundemail_part"),
            *super().get_urls(),
        ]

    def download_part(self, request, pk, part: str) -> HttpResponse:
        """The whole text or HTML part, as a file: never rendered in an admin page."""
        if part not in self.PARTS:
            raise Http404
        if not self.has_view_permission(request):
            raise PermissionDenied
        email = get_object_or_404(InboundEmail.objects.only(part), pk=pk)
        kind = "text/plain" if part == "text" else "text/html"
        response = HttpResponse(getattr(email, part), content_type=f"{kind}; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="inbound-{email.pk}.{"txt" if part == "text" else "html"}"'
        response["Content-Security-Policy"] = "sandbox; default-src 'none'"
        response["X-Content-Type-Options"] = "nosniff"
        return response

    def _head(self, obj: InboundEmail, part: str) -> tuple[str, int]:
        """The first `EMAIL_INBOUND_PREVIEW_CHARS` characters of a part and its whole length, cut in the database."""
        limit = settings.EMAIL_INBOUND_PREVIEW_CHARS
        row = InboundEmail.objects.filter(pk=obj.pk).values_list(Substr(part, 1, limit), Length(part)).first()
        return (row[0] or "", row[1] or 0) if row else ("", 0)

    def _more(self, obj: InboundEmail, part: str, length: int):
        return format_html(
            '<p class="help">{} <a href="{}" download>{}</a></p>',
            gettext("Shown: the first %(shown)s of %(length)s characters.") % {
                "shown": number(settings.EMAIL_INBOUND_PREVIEW_CHARS), "length": number(length)},
            reverse("admin:notifications_inboundemail_part", args=[obj.pk, part]),
            gettext("Download the whole part"),
        )

    @admin.display(description=_("Text"))
    def text_preview(self, obj: InboundEmail):
        text, length = self._head(obj, "text")
        if not length:
            return "—"
        if length <= settings.EMAIL_INBOUND_PREVIEW_CHARS:
            return format_html('<pre style="white-space:pre-wrap">{}</pre>', text)
        return format_html('<pre style="white-space:pre-wrap">{}</pre>{}', text, self._more(obj, "text", length))

    @admin.display(description=_("To"))
    def recipients(self, obj: InboundEmail) -> str:
        return ", ".join(obj.to)

    @admin.display(description=_("HTML"))
    def html_preview(self, obj: InboundEmail):
        html, length = self._head(obj, "html")
        if not length:
            return "—"
        frame = sandboxed_iframe(html, title=_("The email's HTML, sandboxed"))
        if length <= settings.EMAIL_INBOUND_PREVIEW_CHARS:
            return frame
        return format_html("{}{}", frame, self._more(obj, "html", length))
