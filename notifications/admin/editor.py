"""The template admin, as the template editor: templates, their versions and the editor's actions.

The change page edits a template's fields (lists and mappings as rows) and each language's
wording beside a live preview; saving goes through `authoring.editing`, which adds
the versions the edit needs in the same transaction. Beside it: the version history with a
preview of any version, a diff of any two, "make this version active" (a recorded rollback)
and a test send of a saved version or of the draft. Every view checks its own permission:
history and diffs need `view_emailtemplate`, edits and rollbacks `change_emailtemplate`,
previews and test sends `test_emailtemplate`.
"""
from __future__ import annotations

import difflib
import json

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import OuterRef, Subquery
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from notifications import jsoninput
from notifications.admin.readonly import ReadOnlyAdmin
from notifications.admin.editor_forms import (
    RowListField,
    RowMappingField,
    TemplateEditorForm,
    shown_value,
    version_field_name,
)
from notifications.exceptions import InputError, NotificationError, StaleEdit
from notifications.admin.htmlpreview import FRAME_POLICY, sandboxed_iframe
from notifications.models import EmailTemplate, EmailTemplateVersion, TemplateVersionActivation
from notifications.authoring.rendering import VersionSource
from notifications.authoring import preview
from notifications.authoring import testing
from notifications.authoring.concurrency import refuse_if_stale
from notifications.authoring.editing import (
    EDITOR_STALE,
    PARTS,
    activate_version,
    save_template_edit,
    save_version,
)
from notifications.authoring.versions import VersionContent, validate_version_content

FROM_VERSION = "from_version"
PERM_VIEW, PERM_CHANGE = "notifications.view_emailtemplate", "notifications.change_emailtemplate"
PERM_TEST, PERM_ADD_VERSION = "notifications.test_emailtemplate", "notifications.add_emailtemplateversion"
NARROW, WIDE = 375, 800


class VersionInline(admin.TabularInline):
    """The version history: read-only rows, each with its preview, diff and actions."""

    model = EmailTemplateVersion
    fields = ("language", "version", "subject", "is_active", "created_by", "created_at", "links", "edit")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = _("email template versions")
    request = None

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def get_formset(self, request, obj=None, **kwargs):
        self.request = request  # inline instances are made per request (get_inline_instances)
        return super().get_formset(request, obj, **kwargs)

    def get_queryset(self, request):
        previous = EmailTemplateVersion.objects.filter(
            template=OuterRef("template"), language=OuterRef("language"), version__lt=OuterRef("version")
        ).order_by("-version").values("pk")[:1]
        return super().get_queryset(request).select_related("created_by", "template").annotate(
            previous_pk=Subquery(previous))

    @admin.display(description=_("Preview, diff, actions"))
    def links(self, version: EmailTemplateVersion) -> str:
        user = getattr(self.request, "user", None)
        parts = []
        if user is not None and (user.has_perm(PERM_TEST) or user.has_perm(PERM_CHANGE)):
            url = reverse("admin:notifications_emailtemplate_version_preview", args=[version.template_id, version.pk])
            parts.append(format_html('<a href="{}">{}</a>', url, gettext("Preview")))
        diff = reverse("admin:notifications_emailtemplate_diff", args=[version.template_id])
        # With the previous version of its language; a first version with nothing (never with itself).
        query = urlencode({"a": getattr(version, "previous_pk", None) or "", "b": version.pk})
        parts.append(format_html('<a href="{}?{}">{}</a>', diff, query, gettext("Diff")))
        if user is not None and user.has_perm(PERM_CHANGE) and not version.is_active:
            url = reverse("admin:notifications_emailtemplate_activate", args=[version.template_id])
            parts.append(format_html(
                '<button type="submit" class="button" formaction="{}" formnovalidate name="version" value="{}">{}</button>',
                url, version.pk, gettext("Make this version active")))
        return format_html(" · ".join(["{}"] * len(parts)), *parts)

    @admin.display(description=_("Edit"))
    def edit(self, version: EmailTemplateVersion) -> str:
        """An edit is a new version: this opens the add form filled with this one's content."""
        url = reverse("admin:notifications_emailtemplateversion_add")
        return format_html(
            '<a href="{}?{}">{}</a>', url, urlencode({FROM_VERSION: version.pk}), gettext("New version from this one")
        )


class PreviewForm(forms.Form):
    """A draft (or a version's parts) to preview: the editor's live preview posts this."""

    language = forms.ChoiceField(choices=lambda: settings.LANGUAGES, required=False)
    subject = forms.CharField(required=False, strip=False)
    preheader = forms.CharField(required=False, strip=False)
    html_content = forms.CharField(required=False, strip=False)
    text_content = forms.CharField(required=False, strip=False)
    variables = RowMappingField(label=_("variables"))
    declarations = forms.BooleanField(required=False)
    required_variables = RowListField(names=True, label=_("required variables"))
    optional_variables = RowMappingField(label=_("optional variables"))
    layout = forms.CharField(required=False)


def _json_draft(body: bytes) -> tuple[dict, dict]:
    """A JSON draft (`{language, subject, ..., variables: {name: value}}`): PreviewForm's data, and
    the variables as given (checked for NULs and depth like any variables)."""
    text = body.decode("utf-8", errors="replace")
    if jsoninput.nesting_depth(text) > settings.API_MAX_JSON_DEPTH:
        raise NotificationError(gettext("Nested deeper than %(max_depth)s levels (API_MAX_JSON_DEPTH).")
                                % {"max_depth": settings.API_MAX_JSON_DEPTH})
    try:
        draft = json.loads(text)
    except ValueError:
        raise NotificationError(gettext("The draft is not valid JSON.")) from None
    if not isinstance(draft, dict) or not isinstance(draft.get("variables", {}), dict):
        raise NotificationError(gettext("The draft is a JSON object; its variables an object of name → value."))
    variables = draft.get("variables", {})
    try:
        jsoninput.check_value(variables, field="variables", max_depth=settings.API_MAX_JSON_DEPTH)
    except InputError as exc:
        raise NotificationError(exc.message) from None
    data = {key: value for key, value in draft.items() if isinstance(value, (str, bool, list))}
    optional = draft.get("optional_variables")
    if isinstance(optional, dict):
        data["optional_variables__name"] = list(optional)
        data["optional_variables__value"] = [shown_value(value) for value in optional.values()]
    return data, variables


def _preview_errors(messages: list[str]) -> dict:
    """The live preview's answer for a draft it could not render: its shape, with only errors."""
    return preview.Preview(
        errors=messages, problems=[preview.Problem(message=message) for message in messages]).as_dict()


def _form_errors(form: forms.Form) -> list[str]:
    return [f"{form.fields[name].label or name if name in form.fields else name}: {message}"
            if name != "__all__" else message
            for name, errors in form.errors.items() for message in errors]


def _nothing_saved(model_admin: admin.ModelAdmin, request, exc: NotificationError) -> HttpResponseRedirect:
    """A save refused after the form's checks (under the template's lock): the same page again,
    saying why, instead of a 500."""
    model_admin.message_user(request, gettext("Nothing was saved: %(problem)s") % {"problem": exc.message},
                             messages.ERROR)
    return HttpResponseRedirect(request.get_full_path())


@admin.register(EmailTemplate)
class EmailTemplateAdmin(admin.ModelAdmin):
    form = TemplateEditorForm
    change_form_template = "admin/notifications/emailtemplate/change_form.html"
    list_display = ("key", "name", "category", "kind", "lane", "max_attempts", "is_active", "updated_at")
    list_filter = ("category", "kind", "lane", "is_active")
    search_fields = ("key", "name", "description")
    readonly_fields = ("created_at", "updated_at", "created_by", "updated_by")
    inlines = [VersionInline]

    # --- the change page ---------------------------------------------------------------

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.can_add_versions = request.user.has_perm(PERM_ADD_VERSION)
        return form

    def save_model(self, request, obj, form, change) -> None:
        names = [f.name for f in EmailTemplate._meta.fields if f.name in form.cleaned_data]
        before = {v.language: v for v in obj.versions.filter(is_active=True)} if change else {}
        result = save_template_edit(
            template=obj, fields={name: form.cleaned_data[name] for name in names},
            versions=form.version_contents(), user=request.user, opened=form.cleaned_data.get("opened_state") or None,
        )
        obj.pk, obj._state.adding = result.template.pk, False
        for version in result.new_versions:
            self.message_user(request, gettext("New version %(version)s saved; it is the active one.")
                              % {"version": str(version)}, messages.SUCCESS)
            previous = before.get(version.language)
            if (previous is not None and version.text_content.strip() and previous.html_content != version.html_content
                    and previous.text_content == version.text_content):
                self.message_user(request, gettext(
                    "The HTML of %(version)s changed and its text did not: the text part may still say what the "
                    "old HTML said. Check it, or use the text generated from the HTML."
                ) % {"version": str(version)}, messages.WARNING)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        """The save re-checks the edit under the template's lock: if another save made it invalid
        since the form was checked, nothing is written and the page says why (not a 500)."""
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except StaleEdit:
            # Another save came between the form's check and this one (no row lock on SQLite):
            # shown again, the form now sees it and keeps the editor's text beside the refusal.
            try:
                return super().changeform_view(request, object_id, form_url, extra_context)
            except NotificationError as exc:
                return _nothing_saved(self, request, exc)
        except NotificationError as exc:
            return _nothing_saved(self, request, exc)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        form = context["adminform"].form
        editable = self.has_change_permission(request, obj) if obj else self.has_add_permission(request)
        context["editor"] = editable and {
            "languages": form.languages(),
            # The wording comes first; the settings are folded below it, open when one is at fault.
            "settings_open": add or form.settings_have_errors(),
            "detail": form.details.get(None, ""),
            "preview_url": reverse("admin:notifications_emailtemplate_editor_preview"),
            "frame_policy": FRAME_POLICY,
            "frame": sandboxed_iframe("", title=gettext("Live preview"), height=520),
            "narrow": NARROW, "wide": WIDE,
            "can_test": request.user.has_perm(PERM_TEST) and obj is not None,
            "test_send_url": obj and reverse("admin:notifications_emailtemplate_test_send", args=[obj.pk]),
            "own_address": request.user.email,
            "test_addresses": [entry for entry in settings.EMAIL_TEST_RECIPIENTS if not entry.startswith("@")],
        }
        context["stale"] = [
            {"version": now, "diff_url": opened and "{}?{}".format(
                reverse("admin:notifications_emailtemplate_diff", args=[obj.pk]),
                urlencode({"a": opened.pk, "b": now.pk}))}
            for opened, now in getattr(form, "stale_versions", list)()
        ]
        context["activations"] = (
            obj.activations.select_related("version__template", "previous_version__template", "activated_by")[:50]
            if obj else []
        )
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    # --- the editor's own views -------------------------------------------------------------

    def get_urls(self):
        def view(function):
            return self.admin_site.admin_view(function)

        return [
            path("editor-preview/", view(self.editor_preview_view), name="notifications_emailtemplate_editor_preview"),
            path("<path:object_id>/versions/<uuid:version_id>/preview/", view(self.version_preview_view),
                 name="notifications_emailtemplate_version_preview"),
            path("<path:object_id>/diff/", view(self.diff_view), name="notifications_emailtemplate_diff"),
            path("<path:object_id>/activate/", view(self.activate_view), name="notifications_emailtemplate_activate"),
            path("<path:object_id>/test-send/", view(self.test_send_view),
                 name="notifications_emailtemplate_test_send"),
            *super().get_urls(),
        ]

    def _template(self, request, object_id: str) -> EmailTemplate:
        try:
            template = self.get_queryset(request).filter(pk=object_id).first()
        except ValidationError:
            template = None
        if template is None:
            raise Http404(gettext("No email template with this id."))
        return template

    @staticmethod
    def _require(request, *permissions: str) -> None:
        """One of `permissions`, else a 403: every editor view calls this first."""
        if not any(request.user.has_perm(permission) for permission in permissions):
            raise PermissionDenied

    def editor_preview_view(self, request):
        """POST a draft → JSON `{subject, preheader, html, text, errors}`; renders only, sends nothing."""
        self._require(request, PERM_TEST, PERM_CHANGE)
        if request.method != "POST":
            return JsonResponse({"errors": [gettext("Send the draft with POST.")]}, status=405)
        typed = None
        if request.content_type == "application/json":
            try:
                posted, typed = _json_draft(request.body)
            except NotificationError as exc:
                return JsonResponse(_preview_errors([exc.message]))
        else:
            posted = request.POST
        form = PreviewForm(posted)
        if not form.is_valid():
            return JsonResponse(_preview_errors(_form_errors(form)))
        data = form.cleaned_data
        if typed is not None:  # JSON variables keep their JSON types
            data["variables"] = typed
        template = None
        if posted.get("template"):
            try:
                template = self._template(request, posted["template"])
            except Http404:
                template = None
        declared = data["declarations"] or template is None
        result = preview.preview(
            source=VersionSource(subject=data["subject"], preheader=data["preheader"], html_content=data["html_content"],
                                 text_content=data["text_content"], language=data["language"] or settings.LANGUAGE_CODE),
            variables=data["variables"],
            required=data["required_variables"] if declared else template.required_variables,
            optional=data["optional_variables"] if declared else template.optional_variables,
            layout_name=data["layout"] if declared else template.layout,
        )
        return JsonResponse(result.as_dict())

    def version_preview_view(self, request, object_id: str, version_id):
        """Any version rendered with its template's sample variables or typed-in ones, narrow and wide."""
        self._require(request, PERM_TEST, PERM_CHANGE)
        template = self._template(request, object_id)
        version = get_object_or_404(EmailTemplateVersion, pk=version_id, template=template)
        typed = RowMappingField().widget.value_from_datadict(request.GET, None, "variables")
        variables, errors = template.sample_variables, []  # typed rows replace the samples (shown prefilled)
        if any(name.strip() for name, _value in typed):
            try:
                variables = RowMappingField().clean(typed)
            except ValidationError as exc:
                errors = [gettext("Variables: %(problem)s") % {"problem": message} for message in exc.messages]
        result = preview.preview(
            source=VersionSource.of(version), variables=variables, required=template.required_variables,
            optional=template.optional_variables, layout_name=template.layout,
        )
        errors += result.errors
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta, "original": template, "template": template, "version": version,
            "title": gettext("Preview of %(version)s") % {"version": str(version)},
            "preview": result, "errors": errors,
            "narrow_frame": sandboxed_iframe(result.html, title=gettext("Narrow preview"), height=640),
            "wide_frame": sandboxed_iframe(result.html, title=gettext("Wide preview"), height=640),
            "narrow": NARROW, "wide": WIDE,
            "variables_widget": RowMappingField().widget.render(
                "variables", typed if errors or any(n.strip() for n, _v in typed) else variables),
            "others": template.versions.exclude(pk=version.pk).order_by("language", "-version"),
            "can_test": request.user.has_perm(PERM_TEST),
            "test_send_url": reverse("admin:notifications_emailtemplate_test_send", args=[template.pk]),
            "own_address": request.user.email,
        }
        return TemplateResponse(request, "admin/notifications/emailtemplate/version_preview.html", context)

    def diff_view(self, request, object_id: str):
        """A unified diff of subject, preheader, HTML and text between any two versions of a template.

        `b` is the version shown (by default the active one in the default language); `a` the
        one it is compared with: by default the version before it in its language, and empty
        for nothing (a first version then shows every line as added).
        """
        self._require(request, PERM_VIEW, PERM_CHANGE)
        template = self._template(request, object_id)
        versions = list(template.versions.order_by("language", "version"))
        by_id = {str(v.pk): v for v in versions}
        if not versions:
            raise Http404(gettext("This template has no version."))
        default = next((v for v in versions if v.is_active and v.language == template.default_language), versions[-1])
        second = by_id.get(request.GET.get("b", "")) or default
        if "a" in request.GET:
            first = by_id.get(request.GET["a"])
        else:
            first = next((v for v in reversed(versions)
                          if v.language == second.language and v.version < second.version), None)
        labels = {"subject": gettext("Subject"), "preheader": gettext("Preheader"), "html_content": gettext("HTML"),
                  "text_content": gettext("Text")}
        nothing = gettext("nothing (before the first version)")
        parts = []
        for part in PARTS:
            lines = list(difflib.unified_diff(
                getattr(first, part).splitlines() if first else [], getattr(second, part).splitlines(),
                fromfile=str(first) if first else nothing, tofile=str(second), lineterm="", n=3,
            ))
            parts.append({"label": labels[part], "lines": [
                {"text": line, "kind": "add" if line.startswith("+") and not line.startswith("+++")
                 else "del" if line.startswith("-") and not line.startswith("---") else "ctx"}
                for line in lines], "same": not lines})
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta, "original": template, "template": template,
            "title": gettext("Differences between %(a)s and %(b)s") % {"a": str(first) if first else nothing,
                                                                       "b": str(second)},
            "versions": versions, "first": first, "second": second, "parts": parts, "itself": first == second,
        }
        return TemplateResponse(request, "admin/notifications/emailtemplate/diff.html", context)

    def activate_view(self, request, object_id: str):
        """`version`: make it the active one for its language again (recorded; LogEntry too).

        Asks first, as a resend does: without `confirmed=yes` in a POST the answer is a page
        naming the version and the one it would replace, with their diff, and nothing changes.
        """
        self._require(request, PERM_CHANGE)
        template = self._template(request, object_id)
        data = request.POST if request.method == "POST" else request.GET
        version = EmailTemplateVersion.objects.filter(template=template, pk=data.get("version") or None)
        try:
            version = version.first()
        except ValidationError:
            version = None
        if version is None:
            self.message_user(request, gettext("Choose a version of this template to make active."), messages.ERROR)
            return self._back(template)
        if request.method != "POST" or data.get("confirmed") != "yes":
            return self._activate_confirmation(request, template, version)
        try:
            activate_version(version=version, user=request.user)
        except NotificationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return self._back(template)
        message = gettext("Version %(version)s is the active one again.") % {"version": str(version)}
        self.log_change(request, template, [{"changed": {
            "name": str(EmailTemplateVersion._meta.verbose_name), "object": str(version), "fields": ["is_active"]}}])
        self.message_user(request, message, messages.SUCCESS)
        return self._back(template)

    def _activate_confirmation(self, request, template: EmailTemplate, version: EmailTemplateVersion):
        current = template.versions.filter(language=version.language, is_active=True).first()
        diff = reverse("admin:notifications_emailtemplate_diff", args=[template.pk])
        return TemplateResponse(request, "admin/notifications/emailtemplate/activate_confirmation.html", {
            **self.admin_site.each_context(request),
            "opts": self.model._meta, "original": template, "template": template,
            "title": gettext("Make %(version)s the active version again?") % {"version": str(version)},
            "version": version, "current": current,
            "diff_url": current and f"{diff}?{urlencode({'a': current.pk, 'b': version.pk})}",
            "form_url": reverse("admin:notifications_emailtemplate_activate", args=[template.pk]),
            "back_url": reverse("admin:notifications_emailtemplate_change", args=[template.pk]),
        })

    def test_send_view(self, request, object_id: str):
        """POST: send `version` (an id) or the draft being edited (the editor's fields) to a test address.

        Answers JSON to the editor's script (`Accept: application/json`), else redirects back
        with a message. The address: `test_to`, empty for the editor's own.
        """
        self._require(request, PERM_TEST)
        if request.method != "POST":
            raise PermissionDenied
        template = self._template(request, object_id)
        wants_json = "application/json" in request.headers.get("Accept", "")
        try:
            message = self._send_test(request, template)
        except (NotificationError, ValidationError) as exc:
            text = exc.message if isinstance(exc, NotificationError) else " ".join(exc.messages)
            if wants_json:
                return JsonResponse({"ok": False, "error": text}, status=400)
            self.message_user(request, text, messages.ERROR)
            return self._back(template, request.POST.get("next"))
        text = gettext("Test sent to %(address)s (message %(id)s).") % {
            "address": message.address, "id": message.pk}
        if wants_json:
            return JsonResponse({"ok": True, "message": text, "id": str(message.pk)})
        self.message_user(request, text, messages.SUCCESS)
        return self._back(template, request.POST.get("next"))

    def _send_test(self, request, template: EmailTemplate):
        post = request.POST
        posted_rows = "sample_variables__name" in post or "variables__name" in post
        variables = template.sample_variables
        if posted_rows:
            field_name = "sample_variables" if "sample_variables__name" in post else "variables"
            rows = RowMappingField().widget.value_from_datadict(post, None, field_name)
            variables = RowMappingField().clean(rows)
        version_id = post.get("version")
        if version_id:
            try:
                version = template.versions.filter(pk=version_id).first()
            except ValidationError:
                version = None
            if version is None:
                raise NotificationError(gettext("No version %(id)s of this template.") % {"id": version_id})
            return testing.send_test(template=template, user=request.user, to=post.get("test_to", ""),
                                              variables=variables, version=version)
        language = post.get("editor_language") or template.default_language
        if language not in dict(settings.LANGUAGES):
            raise NotificationError(gettext("Unknown language %(language)s.") % {"language": repr(language)})
        draft = VersionSource(language=language, **{
            part: (post.get(version_field_name(language, part)) or "").replace("\r\n", "\n") for part in PARTS})
        if not draft.subject.strip() or not draft.html_content.strip():
            raise NotificationError(gettext("The draft in %(language)s needs a subject and HTML to be sent.")
                                    % {"language": language})
        return testing.send_test(template=template, user=request.user, to=post.get("test_to", ""),
                                          variables=variables, draft=draft)

    @staticmethod
    def _back(template: EmailTemplate, next_url: str | None = None) -> HttpResponseRedirect:
        change = reverse("admin:notifications_emailtemplate_change", args=[template.pk])
        admin_prefix = reverse("admin:index")
        return HttpResponseRedirect(next_url if next_url and next_url.startswith(admin_prefix) else change)


class VersionForm(forms.ModelForm):
    # A choice, not free text: the service refuses other languages, after validation (a 500).
    language = forms.ChoiceField(label=_("language"), choices=lambda: settings.LANGUAGES)
    #: Opened from a version (`?from_version=`): the number of its language's active version
    #: then (0: none), so a save after another editor's is refused rather than replacing it.
    base_version = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)

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
            self._refuse_if_stale(template, data.get("language"), data.get("base_version"))
        return data

    def _refuse_if_stale(self, template: EmailTemplate, language: str | None, base_version: int | None) -> None:
        """Under the template's lock (the admin's transaction), as the editor's form does; shown
        again, the form carries the version now active, for a save once merged by hand."""
        if base_version is None or not language:
            return
        locked = EmailTemplate.objects.select_for_update().get(pk=template.pk)
        try:
            refuse_if_stale(template=locked, base_version=base_version, language=language,
                            message=str(EDITOR_STALE))
        except StaleEdit as exc:
            data = self.data.copy()
            data["base_version"] = exc.active_version.version.version if exc.active_version else 0
            self.data = data
            raise ValidationError(exc.message, code=exc.code) from None


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
            active = version.template.versions.filter(language=version.language, is_active=True).first()
            initial.update(
                template=version.template_id, language=version.language, subject=version.subject,
                preheader=version.preheader, html_content=version.html_content, text_content=version.text_content,
                base_version=active.version if active else 0,
            )
        return initial

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        """A save refused under the template's lock after the form's checks (no row lock on
        SQLite) says why instead of a 500."""
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except NotificationError as exc:
            return _nothing_saved(self, request, exc)

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        return fields if obj is None else [name for name in fields if name != "base_version"]

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        data = form.cleaned_data
        version = save_version(
            template=data["template"], language=data["language"], user=request.user,
            content=VersionContent(subject=data["subject"], preheader=data.get("preheader", ""),
                                   html_content=data["html_content"], text_content=data.get("text_content", "")),
            base_version=data.get("base_version"),
        ).version
        # The admin's redirect and log entry use `obj`: point it at the saved row.
        obj.pk, obj.version, obj._state.adding = version.pk, version.version, False


@admin.register(TemplateVersionActivation)
class TemplateVersionActivationAdmin(ReadOnlyAdmin):
    """Who made which version active, and when: never edited by hand."""

    list_display = ("activated_at", "template", "language", "version", "previous_version", "rollback", "activated_by")
    list_filter = ("rollback", "language")
    search_fields = ("template__key",)
    list_select_related = ("template", "version__template", "previous_version__template", "activated_by")
