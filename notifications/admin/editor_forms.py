"""The template editor's form: lists and mappings as rows, and each language's wording.

Lists (required and sensitive variables, extra recipients) are one input per row;
mappings (optional variables: name → default; sample variables: name → value) are name /
value rows. The rule for a value: text that parses as a JSON list or object (`[1, 2]`,
`{"a": 1}`) is taken as that list or object; anything else is the text as typed (`42` is
the string "42"). Errors name the field and the row.
"""
from __future__ import annotations

import json

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.text import format_lazy
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from notifications import jsoninput
from notifications.models import EmailTemplate, EmailTemplateVersion
from notifications.exceptions import StaleEdit
from notifications.authoring.concurrency import EditState, current_state, refuse_if_stale
from notifications.authoring.versions import PARTS, VersionContent

NAME_SUFFIX, VALUE_SUFFIX = "__name", "__value"


def row_value(text: str) -> object:
    """The value of a mapping row (see the module): a JSON list or object, else the text."""
    stripped = text.strip()
    if stripped[:1] in ("[", "{"):
        if jsoninput.nesting_depth(stripped) > settings.API_MAX_JSON_DEPTH:
            raise ValidationError(
                gettext("Nested deeper than %(max_depth)s levels (API_MAX_JSON_DEPTH).")
                % {"max_depth": settings.API_MAX_JSON_DEPTH}
            )
        try:
            parsed = json.loads(stripped)
        except ValueError:
            return text
        if isinstance(parsed, (list, dict)):
            return parsed
    return text


def shown_value(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


class ListWidget(forms.Widget):
    """One text input per item, with add and remove buttons (template_editor.js)."""

    template_name = "notifications/widgets/list.html"

    def format_value(self, value):
        if isinstance(value, str):  # an initial value given as JSON text
            try:
                value = json.loads(value)
            except ValueError:
                value = [value]
        return [shown_value(item) for item in (value or [])]

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        context["widget"]["rows"] = context["widget"]["value"] or []
        return context

    def value_from_datadict(self, data, files, name):
        if hasattr(data, "getlist"):
            return data.getlist(name)
        value = data.get(name)
        return value if isinstance(value, list) else ([] if value is None else [value])

    def value_omitted_from_data(self, data, files, name):
        return False


class MappingWidget(forms.Widget):
    """Name / value rows, with add and remove buttons (template_editor.js)."""

    template_name = "notifications/widgets/mapping.html"

    def format_value(self, value):
        if isinstance(value, dict):
            return [(name, shown_value(item)) for name, item in value.items()]
        return list(value or [])

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        context["widget"]["rows"] = context["widget"]["value"] or []
        context["widget"]["name_field"], context["widget"]["value_field"] = name + NAME_SUFFIX, name + VALUE_SUFFIX
        return context

    def value_from_datadict(self, data, files, name):
        get = data.getlist if hasattr(data, "getlist") else (lambda key: data.get(key) or [])
        return list(zip(get(name + NAME_SUFFIX), get(name + VALUE_SUFFIX), strict=False))

    def value_omitted_from_data(self, data, files, name):
        return False


class RowListField(forms.Field):
    """A list edited as rows; `names=True` takes variable names only."""

    widget = ListWidget

    def __init__(self, *, names: bool = False, **kwargs) -> None:
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)
        self.names = names

    def to_python(self, value) -> list[str]:
        items, errors, seen = [], [], set()
        for row, item in enumerate(value or [], start=1):
            item = (item or "").strip()
            if not item:
                continue
            if self.names and not item.isidentifier():
                errors.append(gettext("Row %(row)s: %(value)s is not a variable name (letters, digits, underscores).")
                              % {"row": row, "value": repr(item)})
            elif item.lower() in seen:
                errors.append(gettext("Row %(row)s: %(value)s is listed twice.") % {"row": row, "value": repr(item)})
            seen.add(item.lower())
            items.append(item)
        if errors:
            raise ValidationError(errors)
        return items

    def has_changed(self, initial, data) -> bool:
        try:
            return self.to_python(data) != list(initial or [])
        except ValidationError:
            return True


class RowMappingField(forms.Field):
    """A name → value mapping edited as rows (the value rule is the module's)."""

    widget = MappingWidget

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_python(self, value) -> dict[str, object]:
        if isinstance(value, dict):
            return value
        mapping, errors = {}, []
        for row, (name, text) in enumerate(value or [], start=1):
            name, text = (name or "").strip(), text or ""
            if not name:
                if text.strip():
                    errors.append(gettext("Row %(row)s: a value without a name.") % {"row": row})
                continue
            if not name.isidentifier():
                errors.append(gettext("Row %(row)s: %(value)s is not a variable name (letters, digits, underscores).")
                              % {"row": row, "value": repr(name)})
                continue
            if name in mapping:
                errors.append(gettext("Row %(row)s: %(value)s is given twice.") % {"row": row, "value": repr(name)})
                continue
            try:
                mapping[name] = row_value(text)
            except ValidationError as exc:
                errors.append(gettext("Row %(row)s: %(problem)s") % {"row": row, "problem": exc.messages[0]})
        if errors:
            raise ValidationError(errors)
        return mapping

    def has_changed(self, initial, data) -> bool:
        try:
            return self.to_python(data) != dict(initial or {})
        except ValidationError:
            return True


def version_field_name(language: str, part: str) -> str:
    return f"version_{language}_{part}"


class PartField(forms.CharField):
    """One part of a language's wording, changed only when it differs as it would be stored.

    A browser posts a textarea with CRLF line endings and the stored part has LF (and a
    one-line part is stored trimmed): compared as posted, every part would count as changed,
    and the history log would name parts that did not change.
    """

    def __init__(self, *, part: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.part = part

    def has_changed(self, initial, data) -> bool:
        return self._stored(initial) != self._stored(data)

    def _stored(self, value) -> str:
        return getattr(VersionContent(**{self.part: value or ""}).normalised(), self.part)


class StateField(forms.CharField):
    """The hidden state the form was opened on: never a change of the template itself."""

    widget = forms.HiddenInput

    def has_changed(self, initial, data) -> bool:
        return False


def _part_field(part: str, language: str) -> PartField:
    labels = {"subject": _("Subject"), "preheader": _("Preheader"), "html_content": _("HTML"),
              "text_content": _("Text")}
    if part in ("subject", "preheader"):
        widget = forms.TextInput(attrs={"size": 80, "data-part": part})
    else:
        widget = forms.Textarea(attrs={"rows": 16, "cols": 60, "data-part": part, "spellcheck": "false"})
    # The language is in the label, so the history log says which language's part changed.
    return PartField(part=part, label=format_lazy("{} ({})", labels[part], language), required=False, strip=False,
                     widget=widget)


class TemplateEditorForm(forms.ModelForm):
    """The template's fields, its lists and mappings as rows, and one wording per language.

    A language's wording that differs from its active version becomes a new version when
    saved; the whole edit is checked by `plan_template_edit` before anything is written.
    `can_add_versions` is set by the admin from the user's permissions.
    """

    required_variables = RowListField(names=True, label=_("required variables"))
    optional_variables = RowMappingField(label=_("optional variables"),
                                         help_text=_("Name → default. A default may use globals: {{ today }}."))
    sensitive_variables = RowListField(names=True, label=_("sensitive variables"))
    extra_recipients = RowListField(label=_("extra recipients"),
                                    help_text=_("Addresses that receive every message of this template."))
    sample_variables = RowMappingField(
        label=_("sample variables"),
        help_text=_("A value that is a JSON list or object ([…] or {…}) is taken as one; any other value is text."),
    )
    #: The template's state when the page was opened (`authoring.concurrency`): a save
    #: made after another editor's is refused, never silently replacing their version.
    opened_state = StateField(required=False)
    can_add_versions = True

    class Meta:
        model = EmailTemplate
        fields = "__all__"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        active = {}
        self.stale: StaleEdit | None = None
        self.opened_base: EditState | None = None
        if self.instance.pk and not self.instance._state.adding:
            active = {v.language: v for v in self.instance.versions.filter(is_active=True)}
            self.fields["opened_state"].initial = current_state(self.instance, active_versions=active.values()).token
        for code, _name in settings.LANGUAGES:
            for part in PARTS:
                field_name = version_field_name(code, part)
                self.fields[field_name] = _part_field(part, code)
                if code in active:
                    self.initial.setdefault(field_name, getattr(active[code], part))
        self.planned: dict[str, VersionContent] = {}
        #: A refusal's detail, folded below its one sentence (the render budget's names its setting).
        self.details: dict[str | None, str] = {}

    def languages(self) -> list[dict]:
        """Per language: its code, name and the four parts, each a bound field and the detail of
        its error (for the editor's template)."""
        return [
            {"code": code, "name": name, "parts": [
                {"field": self[version_field_name(code, part)], "is_text": part == "text_content",
                 "detail": self.details.get(version_field_name(code, part), "")} for part in PARTS]}
            for code, name in settings.LANGUAGES
        ]

    def settings_have_errors(self) -> bool:
        """An error outside the wording: the folded settings open, so it is seen."""
        wording = {version_field_name(code, part) for code, _name in settings.LANGUAGES for part in PARTS}
        return bool(set(self.errors) - wording - {"__all__", "opened_state"})

    def version_contents(self) -> dict[str, VersionContent]:
        data = getattr(self, "cleaned_data", {})
        return {
            code: VersionContent(**{part: data.get(version_field_name(code, part)) or "" for part in PARTS})
            for code, _name in settings.LANGUAGES
        }

    def _post_clean(self) -> None:
        super()._post_clean()
        if self.instance.pk and not self.instance._state.adding and not self._refuse_if_stale():
            return
        if self.errors:
            return
        from notifications.exceptions import NotificationError
        from notifications.authoring.editing import VersionRefused, plan_template_edit

        try:
            self.planned = plan_template_edit(template=self.instance, versions=self.version_contents())
        except VersionRefused as exc:
            field = version_field_name(exc.language, exc.part) if exc.part else None
            self.add_error(field, exc.problem.message)
            self.details[field] = exc.problem.detail
            if field and exc.problem.line:
                self.fields[field].widget.attrs["data-error-line"] = exc.problem.line
            return
        except NotificationError as exc:
            self.add_error(exc.field if exc.field in self.fields else None, exc.message)
            return
        if self.planned and not self.can_add_versions:
            self.add_error(None, gettext(
                "Saving this adds a version (%(languages)s); you may not add template versions."
            ) % {"languages": ", ".join(self.planned)})

    def _refuse_if_stale(self) -> bool:
        """False, with the refusal as the form's error, when another save came after the page was
        opened. The template row is locked here, in the admin's transaction, so no save can come
        between this check and this form's own save (PostgreSQL).

        The page shown again keeps the editor's text and carries the state it now knows: once
        they have merged by hand, saving again is based on the other editor's version.
        """
        from notifications.authoring.editing import EDITOR_STALE

        opened = (self.data.get("opened_state") or "").strip()
        template = EmailTemplate.objects.select_for_update().get(pk=self.instance.pk)
        if not opened:
            self.add_error(None, gettext(
                "This form does not say which versions it was opened on, so saving it could replace "
                "someone else's newer version: open the template again and redo the change."))
            self._carry(current_state(template).token)
            return False
        self.opened_base = EditState.parse(opened)
        try:
            refuse_if_stale(template=template, opened=opened, message=str(EDITOR_STALE))
        except StaleEdit as exc:
            self.stale = exc
            self.add_error(None, exc.message)
            self._carry(exc.current_token)
            return False
        return True

    def _carry(self, token: str) -> None:
        data = self.data.copy()
        data["opened_state"] = token
        self.data = data

    def stale_versions(self) -> list[tuple[EmailTemplateVersion | None, EmailTemplateVersion]]:
        """For a refused stale save: each language whose active version changed, as (the version
        the page was opened on, or None, the version active now); the page links their diff."""
        if self.stale is None:
            return []
        numbers = self.opened_base.numbers if self.opened_base is not None else {}
        pairs = []
        for change in self.stale.changes:
            if change.version is not None:
                opened = self.instance.versions.filter(
                    language=change.language, version=numbers.get(change.language, 0)).first()
                pairs.append((opened, change.version))
        return pairs
