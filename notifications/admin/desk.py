"""The audit desk: the message list, a message's page, its actions and a recipient's history.

Read by Auditors (view permissions), acted on by those who hold the action's permission:
resend and retry need `resend_message`, cancel `cancel_message`. Every action is
a POST through `core.outbox.message_actions` (so through the state machine); a refusal says
why and changes nothing.

The list stays fast on a million rows: the heavy columns are deferred, no column reads a
related row, each filter and the search run on an index with the default ordering
(`-created_at`), the filters' choices come from small tables (never a `DISTINCT` over the
messages) and no page counts the whole table (`admin_paging`).
"""
from __future__ import annotations

import uuid

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.http import content_disposition_header, urlencode
from django.utils.text import Truncator
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from notifications.admin.paging import EstimatedCountPaginator
from notifications.admin.readonly import ReadOnlyAdmin, ReadOnlyInline
from notifications.exceptions import NotificationError
from notifications.formatting import number
from notifications.admin.htmlpreview import sandboxed_iframe
from notifications.models import (
    Category,
    DeliveryAttempt,
    DeliveryEvent,
    EmailAttachment,
    Message,
    EmailTemplate,
    Status,
    Suppression,
)
from notifications.core.outbox import lifecycle
from notifications.core.outbox import message_actions
from notifications.core.addresses import address_key

#: Never read for the list: the rendering, the bytes, the variables and the seal.
HEAVY = ("html_content", "text_content", "mime", "variables", "sealed_content")
SUBJECT_CHARACTERS = 40
SHORT_TIME = "Y-m-d H:i"
APP = "notifications"
#: The confirmation page's one-time value, so a repeated POST of it resends once.
RESEND_TOKEN = "resend_token"


def action_url(name: str, *args) -> str:
    return reverse(f"admin:{APP}_message_{name}", args=args)


def history_url(address: str) -> str:
    return f"{action_url('recipient')}?{urlencode({'email': address})}"


def download_link(attachment: EmailAttachment) -> str:
    return format_html('<a href="{}">{}</a>', action_url("attachment_download", attachment.message_id, attachment.pk),
                       gettext("Download"))


class AttachmentInline(ReadOnlyInline):
    model = EmailAttachment
    fields = ("filename", "content_type", "size_bytes", "content_hash", "download")

    @admin.display(description=_("SHA-256"))
    def content_hash(self, attachment: EmailAttachment) -> str:
        """The first 16 hex digits (the whole in the tooltip): the full 64 would widen the page."""
        return format_html('<span title="{}">{}…</span>', attachment.sha256, attachment.sha256[:16])

    @admin.display(description=_("Download"))
    def download(self, attachment: EmailAttachment) -> str:
        return download_link(attachment)


class EventInline(ReadOnlyInline):
    model = DeliveryEvent
    fields = ("occurred_at", "event_type", "provider", "recipient", "detail_shown")

    @admin.display(description=_("detail"))
    def detail_shown(self, event: DeliveryEvent) -> str:
        """Our description in the page's language; a provider's own words as it sent them."""
        return event.detail_text or "—"


class AttemptInline(ReadOnlyInline):
    model = DeliveryAttempt
    fields = ("number", "started_at", "finished_at", "outcome", "sent_via", "error_shown")

    @admin.display(description=_("error"))
    def error_shown(self, attempt: DeliveryAttempt) -> str:
        """The error in the page's language (from its code); an old row's stored text."""
        return attempt.error_text or "—"


class TemplateFilter(admin.SimpleListFilter):
    """The templates' keys, read from the templates table (a handful of rows)."""

    title = _("template")
    parameter_name = "template"

    def lookups(self, request, model_admin):
        return [(key, key) for key in EmailTemplate.objects.order_by("key").values_list("key", flat=True)]

    def queryset(self, request, queryset):
        return queryset.filter(template_key=self.value()) if self.value() else queryset


class CategoryFilter(admin.SimpleListFilter):
    """The template's category, as the keys of its templates: the `template_key` index, no join."""

    title = _("template category")
    parameter_name = "category"

    def lookups(self, request, model_admin):
        return Category.choices

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        keys = list(EmailTemplate.objects.filter(category=self.value()).values_list("key", flat=True))
        return queryset.filter(template_key__in=keys)


@admin.register(EmailAttachment)
class EmailAttachmentAdmin(ReadOnlyAdmin):
    """Metadata, and a download link (the bytes are never rendered into a page)."""

    list_display = ("filename", "content_type", "size_bytes", "message", "created_at", "download")
    list_filter = ("content_type",)
    search_fields = ("filename", "=blob__sha256", "=message__id")
    fields = ("message", "filename", "content_type", "size_bytes", "sha256", "created_at", "download")
    readonly_fields = fields

    def get_queryset(self, request):
        # The message's name only (`__str__`): never its rendering or bytes, a hundred times a page.
        return super().get_queryset(request).select_related("message").only(
            *(f.name for f in EmailAttachment._meta.concrete_fields),
            "message__template_key", "message__address", "message__status")

    @admin.display(description=_("Download"))
    def download(self, attachment: EmailAttachment) -> str:
        return download_link(attachment)


class MessageChangeList(ChangeList):
    def get_queryset(self, request, exclude_parameters=None):
        return super().get_queryset(request, exclude_parameters).defer(*HEAVY)


@admin.register(Message)
class EmailMessageAdmin(ReadOnlyAdmin):
    """The audit log: searchable by recipient, never edited; resent, retried or cancelled
    by those allowed to."""

    # Narrow enough for a 1280-pixel window beside the filters: short times, a cut subject.
    list_display = ("created", "recipient", "template_key", "short_subject", "status", "attempts", "sent")
    list_filter = ("status", TemplateFilter, CategoryFilter, "lane", ("created_at", admin.DateFieldListFilter))
    sortable_by = ("created",)
    search_fields = ("address",)  # shows the box; `get_search_results` decides what a term means
    search_help_text = _("An exact address (any case), a message ID, or a provider message ID (with or without <>).")
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # "Show counts" would count the table once per choice
    list_per_page = 100
    inlines = [AttachmentInline, AttemptInline, EventInline]
    actions = ["retry", "resend", "cancel"]
    change_form_template = "admin/notifications/message/change_form.html"
    fieldsets = (
        (None, {"fields": (
            "id", "status", "recipient_link", "template_key", "template_version_link", "language", "lane",
            "source_endpoint", "sent_by", "is_test", "created_at", "send_at", "next_attempt_at", "sent_at",
            "delivered_at", "attempts", "max_attempts", "error_shown", "bounce_type", "bounce_subtype",
            "sent_via", "provider_message_id", "idempotency_key", "resent_from_link", "resends_list",
        )}),
        (_("Content"), {"fields": (
            "from_email", "reply_to", "cc", "bcc", "subject", "is_masked", "variables", "html_preview",
            "text_preview",
        )}),
    )

    # --- the list ---------------------------------------------------------------------

    def get_changelist(self, request, **kwargs):
        return MessageChangeList

    def get_search_results(self, request, queryset, search_term):
        """Each term on an index: an address (exact, any case), a message ID, or a provider's id."""
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            return queryset.filter(pk=uuid.UUID(term)), False
        except ValueError:
            pass
        message_ids = [term, f"<{term.strip('<>')}>"]
        if "@" in term and not term.startswith("<"):
            # An address, or a Message-ID typed without its angle brackets (`x@rgz.bj`): both
            # are exact lookups on an index, so one term looks for either.
            return queryset.filter(Q(address__iexact=term) | Q(provider_message_id__in=message_ids)), False
        return queryset.filter(provider_message_id__in=message_ids), False

    @admin.display(description=_("recipient address"))
    def recipient(self, message: Message) -> str:
        return format_html('<a href="{}" title="{}">{}</a>', history_url(message.address),
                           gettext("This address's history"), message.address)

    @admin.display(description=_("subject"))
    def short_subject(self, message: Message) -> str:
        return Truncator(message.subject).chars(SUBJECT_CHARACTERS)

    @admin.display(description=_("created at"), ordering="created_at")
    def created(self, message: Message) -> str:
        return short_time(message.created_at)

    @admin.display(description=_("sent at"))
    def sent(self, message: Message) -> str:
        return short_time(message.sent_at)

    def changelist_view(self, request, extra_context=None):
        # The list needs the width: the app menu stays on the other pages (and the breadcrumbs here).
        return super().changelist_view(request, {**(extra_context or {}), "is_nav_sidebar_enabled": False})

    # --- a message's page -------------------------------------------------------------

    def get_readonly_fields(self, request, obj=None):
        return [name for _title, options in self.fieldsets for name in options["fields"]]

    def get_object(self, request, object_id, from_field=None):
        message = super().get_object(request, object_id, from_field)
        if message is not None:  # what the page shows of the rows it points at, in the same query
            message = Message.objects.select_related("template_version", "sent_by").get(pk=message.pk)
        return message

    @admin.display(description=_("recipient address"))
    def recipient_link(self, message: Message) -> str:
        return format_html('{} (<a href="{}">{}</a>)', message.address, history_url(message.address),
                           gettext("history"))

    @admin.display(description=_("error message"))
    def error_shown(self, message: Message) -> str:
        """The error in the page's language (from its code); an old row's stored text."""
        return message.error_text or "—"

    @admin.display(description=_("template version"))
    def template_version_link(self, message: Message) -> str:
        version = message.template_version
        if version is None:
            return "—"
        url = reverse(f"admin:{APP}_emailtemplateversion_change", args=[version.pk])
        return format_html('<a href="{}">{} v{} ({})</a>', url, message.template_key, version.version,
                           version.language)

    @admin.display(description=_("resent from"))
    def resent_from_link(self, message: Message) -> str:
        if message.resent_from_id is None:
            return "—"
        return format_html('<a href="{}">{}</a>', action_url("change", message.resent_from_id),
                           message.resent_from_id)

    @admin.display(description=_("resent as"))
    def resends_list(self, message: Message) -> str:
        resends = list(message.resends.order_by("created_at").values_list("pk", "status", "created_at"))
        if not resends:
            return "—"
        return format_html_join(", ", '<a href="{}">{}</a> ({}, {})', (
            (action_url("change", pk), pk, message_actions.status_label(status), created_at.strftime("%Y-%m-%d %H:%M"))
            for pk, status, created_at in resends
        ))

    @admin.display(description=_("HTML"))
    def html_preview(self, message: Message) -> str:
        if not message.html_content:
            return "—"
        # A frame of 100 % width in a box as wide as its content would be 300 pixels: the box gets a width.
        return format_html('<div style="width:760px;max-width:100%">{}</div>', sandboxed_iframe(
            message.html_content, title=gettext("The message's HTML, sandboxed"), height=640))

    @admin.display(description=_("Text"))
    def text_preview(self, message: Message) -> str:
        if not message.text_content:
            return "—"
        return format_html('<pre style="white-space:pre-wrap;max-width:60em">{}</pre>', message.text_content)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        message = self.get_object(request, object_id)
        extra_context = {**(extra_context or {}), "desk_actions": self.desk_actions(request, message)}
        return super().change_view(request, object_id, form_url, extra_context)

    def desk_actions(self, request, message: Message | None) -> list[dict]:
        """The buttons the page shows: only those the user may use and the status allows."""
        if message is None:
            return []
        found = []
        if self.has_resend_permission(request) and not message_actions.resend_refusal(message):
            found.append({"label": gettext("Resend"), "url": action_url("resend", message.pk), "method": "get"})
        if self.has_resend_permission(request) and not message_actions.retry_refusal(message):
            found.append({"label": gettext("Retry"), "url": action_url("retry", message.pk), "method": "post"})
        if self.has_cancel_permission(request) and message.status in lifecycle.WAITING:
            found.append({"label": gettext("Cancel"), "url": action_url("cancel", message.pk), "method": "post"})
        return found

    # --- permissions of the actions -------------------------------------------------------

    def has_resend_permission(self, request) -> bool:
        return request.user.has_perm(f"{APP}.resend_message")

    def has_cancel_permission(self, request) -> bool:
        return request.user.has_perm(f"{APP}.cancel_message")

    # --- routes ---------------------------------------------------------------------------

    def get_urls(self):
        wrap = self.admin_site.admin_view
        name = f"{APP}_message"
        return [
            path("recipient/", wrap(self.recipient_view), name=f"{name}_recipient"),
            path("<uuid:object_id>/resend/", wrap(self.resend_view), name=f"{name}_resend"),
            path("<uuid:object_id>/retry/", wrap(require_POST(self.retry_view)), name=f"{name}_retry"),
            path("<uuid:object_id>/cancel/", wrap(require_POST(self.cancel_view)), name=f"{name}_cancel"),
            path("<uuid:object_id>/attachments/<uuid:attachment_id>/download/",
                 wrap(self.attachment_download_view), name=f"{name}_attachment_download"),
            *super().get_urls(),
        ]

    def _message(self, request, object_id) -> Message:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return get_object_or_404(Message.objects.defer(*HEAVY), pk=object_id)

    def _back(self, message: Message) -> HttpResponseRedirect:
        return HttpResponseRedirect(action_url("change", message.pk))

    def resend_view(self, request, object_id):
        """GET: "are you sure?"; POST: queue the copy and open it."""
        message = self._message(request, object_id)
        if not self.has_resend_permission(request):
            raise PermissionDenied
        refusal = message_actions.resend_refusal(message)
        if refusal:
            self.message_user(request, refusal, messages.ERROR)
            return self._back(message)
        if request.method != "POST":
            return self.resend_confirmation(request, [message], form_url=action_url("resend", message.pk))
        try:
            copy = message_actions.resend_message(message=message, requested_by=request.user,
                                                  token=request.POST.get(RESEND_TOKEN, ""))
        except NotificationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return self._back(message)
        self._report_resends(request, [(message, copy)])
        return HttpResponseRedirect(action_url("change", copy.pk))

    def resend_confirmation(self, request, selected: list[Message], *, form_url: str, hidden=()):
        return TemplateResponse(request, "admin/notifications/message/resend_confirmation.html", {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": gettext("Resend these messages?") if len(selected) > 1 else gettext("Resend this message?"),
            "selected": selected,
            "form_url": form_url,
            # One value per confirmation page: posting it twice queues one copy (resend_message).
            "hidden": [*hidden, (RESEND_TOKEN, uuid.uuid4().hex)],
        })

    def _report_resends(self, request, pairs) -> None:
        for original, copy in pairs:
            self.log_change(request, original, gettext("Resent as %(id)s.") % {"id": copy.pk})
            if copy.status == Status.SUPPRESSED:
                self.message_user(request, gettext("The copy of %(id)s was not sent: %(reason)s") % {
                    "id": original.pk, "reason": copy.error_text}, messages.WARNING)
        queued = sum(1 for _original, copy in pairs if copy.status != Status.SUPPRESSED)
        if queued:
            self.message_user(request, ngettext(
                "%(count)s message resent: a new message is queued.",
                "%(count)s messages resent: new messages are queued.", queued) % {"count": number(queued)},
                messages.SUCCESS)

    def retry_view(self, request, object_id):
        message = self._message(request, object_id)
        if not self.has_resend_permission(request):
            raise PermissionDenied
        self._report_retry(request, message_actions.retry_messages(message_ids=[message.pk]), [message])
        return self._back(message)

    def _report_retry(self, request, result: message_actions.RetryResult, selected) -> None:
        retried_ids = {message.pk for message in selected} - set(result.refused)
        for message in selected:
            if message.pk in retried_ids:
                self.log_change(request, message, gettext("Retried."))
        if result.retried:
            self.message_user(request, ngettext(
                "%(count)s message queued again; it will be sent shortly.",
                "%(count)s messages queued again; they will be sent shortly.", result.retried,
            ) % {"count": number(result.retried)}, messages.SUCCESS)
        for reason, count in _grouped(result.refused.values()):
            self.message_user(request, ngettext(
                "%(count)s message not retried: %(reason)s", "%(count)s messages not retried: %(reason)s", count,
            ) % {"count": number(count), "reason": reason}, messages.WARNING)

    def cancel_view(self, request, object_id):
        message = self._message(request, object_id)
        if not self.has_cancel_permission(request):
            raise PermissionDenied
        try:
            message_actions.cancel_message(message=message)
        except NotificationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
        else:
            self.log_change(request, message, gettext("Cancelled."))
            self.message_user(request, gettext("Message cancelled; it will never be sent."), messages.SUCCESS)
        return self._back(message)

    def attachment_download_view(self, request, object_id, attachment_id):
        """The attachment's bytes as a download: never shown inline, never sniffed."""
        if not (self.has_view_permission(request) and request.user.has_perm(f"{APP}.view_emailattachment")):
            raise PermissionDenied
        attachment = get_object_or_404(EmailAttachment.objects.select_related("blob"), pk=attachment_id,
                                       message_id=object_id)
        response = HttpResponse(bytes(attachment.blob.data), content_type="application/octet-stream")
        response["Content-Disposition"] = content_disposition_header(True, attachment.filename)
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "sandbox"
        return response

    def recipient_view(self, request):
        """Everything about one address (any case): its messages, their events, its suppressions."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        address = request.GET.get("email", "").strip()
        if not address:
            raise Http404(gettext("Give an address: ?email=…"))
        rows = Message.objects.filter(address__iexact=address).defer(*HEAVY).order_by("-created_at", "-pk")
        page = Paginator(rows, self.list_per_page).get_page(request.GET.get("p"))
        user = request.user
        events = self._recipient_events(address) if user.has_perm(f"{APP}.view_deliveryevent") else None
        suppressions = (Suppression.objects.filter(address=address_key(address)).order_by("-created_at")
                        if user.has_perm(f"{APP}.view_suppression") else None)
        return TemplateResponse(request, "admin/notifications/message/recipient_history.html", {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": gettext("History of %(address)s") % {"address": address},
            "address": address,
            "page": page,
            "events": events,
            "suppressions": suppressions,
            "changelist_url": action_url("changelist"),
        })

    def _recipient_events(self, address: str) -> list[DeliveryEvent]:
        """The newest events about `address`: those of its messages, and those that matched no
        message of ours (an address the provider reports on, e.g. a bounce of mail sent
        elsewhere), each through an index of its own, merged newest first."""
        newest = ("-occurred_at", "-created_at")
        of_messages = DeliveryEvent.objects.filter(message__address__iexact=address).order_by(*newest)
        unmatched = DeliveryEvent.objects.filter(message__isnull=True, recipient__iexact=address).order_by(*newest)
        merged = [*of_messages[:self.list_per_page], *unmatched[:self.list_per_page]]
        merged.sort(key=lambda event: (event.occurred_at, event.created_at), reverse=True)
        return merged[:self.list_per_page]

    # --- list actions -------------------------------------------------------------------------

    @admin.action(description=_("Retry selected failed or expired messages"), permissions=["resend"])
    def retry(self, request, queryset) -> None:
        """Through the state machine, all at once: the others are left as they are, and counted."""
        selected = list(queryset.only("pk", "template_key", "address", "status"))  # what the log names
        self._report_retry(request, message_actions.retry_messages(message_ids=[m.pk for m in selected]), selected)

    @admin.action(description=_("Resend selected messages"), permissions=["resend"])
    def resend(self, request, queryset):
        """After a confirmation page listing them: each resendable one is queued again as a new message."""
        selected = list(queryset.defer(*HEAVY))
        reasons = {message.pk: message_actions.resend_refusal(message) for message in selected}
        refused = [(message, reasons[message.pk]) for message in selected if reasons[message.pk]]
        resendable = [message for message in selected if not reasons[message.pk]]
        if request.POST.get("confirmed") != "yes":
            if not resendable:
                for reason, count in _grouped(why for _message, why in refused):
                    self.message_user(request, ngettext(
                        "%(count)s message not resent: %(reason)s", "%(count)s messages not resent: %(reason)s",
                        count) % {"count": number(count), "reason": reason}, messages.WARNING)
                return None
            hidden = [("action", "resend"), ("confirmed", "yes"),
                      *((admin.helpers.ACTION_CHECKBOX_NAME, str(m.pk)) for m in resendable)]
            return self.resend_confirmation(request, resendable, form_url=action_url("changelist"), hidden=hidden)
        pairs = []
        for message in resendable:
            try:
                pairs.append((message, message_actions.resend_message(
                    message=message, requested_by=request.user, token=request.POST.get(RESEND_TOKEN, ""))))
            except NotificationError as exc:
                refused.append((message, exc.message))
        self._report_resends(request, pairs)
        for reason, count in _grouped(why for _message, why in refused):
            self.message_user(request, ngettext(
                "%(count)s message not resent: %(reason)s", "%(count)s messages not resent: %(reason)s", count,
            ) % {"count": number(count), "reason": reason}, messages.WARNING)
        return None

    @admin.action(description=_("Cancel selected scheduled or queued messages"), permissions=["cancel"])
    def cancel(self, request, queryset) -> None:
        """Through the state machine, row by row: a message a worker has claimed meanwhile is left alone."""
        outcomes = [lifecycle.cancel(pk) for pk in queryset.values_list("pk", flat=True)]
        cancelled = sum(1 for outcome in outcomes if outcome)
        if cancelled:
            self.message_user(
                request,
                ngettext(
                    "%(count)s message cancelled; it will never be sent.",
                    "%(count)s messages cancelled; they will never be sent.",
                    cancelled,
                ) % {"count": number(cancelled)},
                messages.SUCCESS,
            )
        refused = [outcome.status for outcome in outcomes if not outcome]
        if refused:
            self.message_user(
                request,
                ngettext(
                    "%(count)s message not cancelled: only scheduled or queued messages can be (found %(found)s).",
                    "%(count)s messages not cancelled: only scheduled or queued messages can be (found %(found)s).",
                    len(refused),
                ) % {"count": number(len(refused)), "found": ", ".join(
                    sorted({message_actions.status_label(status) for status in refused if status}))},
                messages.WARNING,
            )


def short_time(value) -> str:
    return date_format(timezone.localtime(value), SHORT_TIME) if value else "—"


def _grouped(reasons) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for reason in reasons:
        counts[reason] = counts.get(reason, 0) + 1
    return sorted(counts.items())
