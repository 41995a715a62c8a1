"""A send's draft: its recipients, its rendering (in the sandbox, within its budget) and its row's fields.

Rendered once per request, whatever the number of recipients; the sensitive variables are
masked in the audit and the true rendering sealed (`sealing`).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from django.utils.translation import gettext as _

from notifications import jsoninput
from notifications.exceptions import NotificationError, TemplateError
from notifications.models import EmailTemplate, Kind
from notifications.authoring.rendering import RenderedEmail, VersionSource, render

from notifications.channels.email import sealing


@dataclass(frozen=True)
class Draft:
    """What one request sends: its recipients, their common rendering and the row's fields."""

    recipients: list[str]
    rendered: RenderedEmail
    fields: dict
    marketing: bool = False  # a marketing template's: an unsubscribed address is suppressed too


def template_draft(*, template: EmailTemplate, version, recipients: list[str],
                    variables: Mapping[str, object], fields: dict, source: VersionSource | None = None) -> Draft:
    """Render once for these recipients; mask and seal the sensitive variables (sealing.py).

    `source` renders content that is no saved version (an editor's draft): `version` is then None.
    """
    source = source or VersionSource.of(version)
    options = {
        "required": template.required_variables,
        "optional": template.optional_variables,
        "layout_name": template.layout,
    }
    rendered = render(source, variables=variables, **options)
    for part in (rendered.subject, rendered.preheader, rendered.html, rendered.text):
        if jsoninput.NUL in part:
            raise TemplateError(
                _("The template's output contains a NUL character (U+0000), which cannot be stored."),
                field="template", code="unstorable_text",
            )
    hidden = sealing.sensitive_names(template.sensitive_variables, variables)
    sealed = ""
    if hidden:
        sealed = sealing.seal(rendered)
        try:
            rendered = render(source, variables=sealing.masked(variables, hidden), **options)
        except NotificationError:
            rendered = sealing.withheld()
    return Draft(
        recipients=recipients,
        rendered=rendered,
        fields={
            "template_key": template.key,
            "template_version": version,
            "language": source.language,
            "variables": sealing.masked(variables, template.sensitive_variables),
            "is_masked": bool(hidden),
            "sealed_content": sealed,
            "lane": template.lane,
            "max_attempts": template.max_attempts,
            **fields,
        },
        marketing=template.kind == Kind.MARKETING,
    )
