"""The template editor's change form as a browser posts it: lists one input per row, mappings
as name / value rows, and each language's wording (`version_<language>_<part>`)."""
from __future__ import annotations

import json

from notifications.models import EmailTemplate
from notifications.authoring.concurrency import current_state

LISTS = ("required_variables", "sensitive_variables", "extra_recipients")
MAPPINGS = ("optional_variables", "sample_variables")


def mapping_rows(name: str, rows) -> dict:
    """A mapping as the widget posts it: `<name>__name` and `<name>__value`, one per row."""
    if isinstance(rows, dict):
        rows = [(key, value if isinstance(value, str) else json.dumps(value)) for key, value in rows.items()]
    return {f"{name}__name": [key for key, _ in rows], f"{name}__value": [value for _, value in rows]}


def template_form(template: EmailTemplate, **changes) -> dict:
    """The change form's fields as the admin posts them, with `changes` applied (lists and rows as Python)."""
    values = {
        "key": template.key, "name": template.name, "description": template.description,
        "category": template.category, "kind": template.kind, "lane": template.lane,
        "required_variables": template.required_variables, "optional_variables": template.optional_variables,
        "sensitive_variables": template.sensitive_variables, "extra_recipients": template.extra_recipients,
        "sample_variables": template.sample_variables,
        "max_attempts": template.max_attempts, "default_language": template.default_language,
        # A field with a callable default is posted with its hidden initial value too (Django's show_hidden_initial).
        "initial-max_attempts": template.max_attempts,
        "layout": template.layout, "is_active": "on" if template.is_active else "",
        "versions-TOTAL_FORMS": "0", "versions-INITIAL_FORMS": "0",
        "versions-MIN_NUM_FORMS": "0", "versions-MAX_NUM_FORMS": "1000",
    }
    if template.pk:  # as if the page was opened just now
        values["opened_state"] = current_state(EmailTemplate.objects.get(pk=template.pk)).token
    if template.attachments_allowed:
        values["attachments_allowed"] = "on"
    values.update(changes)
    data = {}
    for name, value in values.items():
        if name in MAPPINGS:
            data.update(mapping_rows(name, value))
        else:
            data[name] = value
    return data


def editor_form(template: EmailTemplate, *, wording: dict[str, dict[str, str]] | None = None, **changes) -> dict:
    """`template_form` plus each language's wording: the active version's, with `wording`'s parts changed."""
    data = template_form(template, **changes)
    active = {version.language: version for version in template.versions.filter(is_active=True)}
    for language, version in active.items():
        for part in ("subject", "preheader", "html_content", "text_content"):
            data[f"version_{language}_{part}"] = getattr(version, part)
    for language, parts in (wording or {}).items():
        for part, value in parts.items():
            data[f"version_{language}_{part}"] = value
    return data
