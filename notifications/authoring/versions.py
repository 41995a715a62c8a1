"""Writes and lookups for templates and their versions.

An edit never rewrites a version: `create_template_version` adds the next number for the
language and makes it the active one, in a transaction that locks the template row so
two editors saving at once get consecutive numbers instead of a constraint error.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from collections.abc import Mapping

from django.conf import settings
from django.db import connections, router, transaction
from django.utils.translation import gettext as _

from notifications.exceptions import NotificationError, TemplateError, TemplateInactive, TemplateNotFound
from notifications.channels.email.headers import subject_problem
from notifications.models import EmailTemplate, EmailTemplateVersion
from notifications.authoring.rendering import VersionSource, check_declarations, render
from notifications.authoring.rendering.environment import layout_exists

from notifications.core.outbox import raw_sql


PARTS = ("subject", "preheader", "html_content", "text_content")


@dataclass(frozen=True)
class VersionContent:
    """The four parts of one language's wording: as the editor sends them, as a template
    folder holds them (`template_files`), or as a saved version has them (`of`)."""

    subject: str = ""
    preheader: str = ""
    html_content: str = ""
    text_content: str = ""

    @classmethod
    def of(cls, parts: Mapping[str, str] | EmailTemplateVersion) -> VersionContent:
        get = (lambda name: getattr(parts, name)) if isinstance(parts, EmailTemplateVersion) else parts.get
        return cls(**{name: get(name) or "" for name in PARTS})

    def normalised(self) -> VersionContent:
        """As `create_template_version` stores it: one-line parts trimmed, LF line endings."""
        return VersionContent(
            subject=self.subject.strip(), preheader=self.preheader.strip(),
            html_content=_lf(self.html_content), text_content=_lf(self.text_content),
        )

    @property
    def is_empty(self) -> bool:
        return not any(part.strip() for part in (self.subject, self.preheader, self.html_content, self.text_content))

    def as_dict(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in PARTS}

    def differing_parts(self, other: VersionContent) -> list[str]:
        """The names of the parts (in `PARTS` order) that differ from `other`'s."""
        return [name for name in PARTS if getattr(self, name) != getattr(other, name)]


def get_template(key: str, *, require_active: bool = True) -> EmailTemplate:
    """The template, with its active versions loaded (`active_versions`) in the same query.

    Read afresh at every call (an edit in another process is seen at once), in one query
    whose SQL is written once per process (`_active_versions_sql`): building it with the
    ORM at each send cost more than running it.
    """
    if not isinstance(key, str) or not key:
        raise TemplateNotFound(_("A template key is required."))
    template, versions = _template_with_active_versions(key)
    if template is None:
        raise TemplateNotFound(_("No email template with key %(key)s.") % {"key": repr(key)})
    template.active_versions = versions
    if require_active and not template.is_active:
        raise TemplateInactive(
            _("Email template %(key)s is inactive; activate it before sending.") % {"key": repr(key)}
        )
    return template


def _template_with_active_versions(key: str) -> tuple[EmailTemplate | None, list[EmailTemplateVersion]]:
    """The template `key` (None if there is none) and its active versions, one query.

    Rows become model instances as the ORM makes them (`raw_sql`), the versions sharing
    the one template instance.
    """
    alias = router.db_for_read(EmailTemplate)
    template_columns = raw_sql.columns(EmailTemplate, "t", alias)
    version_columns = raw_sql.columns(EmailTemplateVersion, "v", alias)
    with connections[alias].cursor() as cursor:
        cursor.execute(_active_versions_sql(alias), [key])
        rows = cursor.fetchall()
    if not rows:
        return None, []
    width = len(template_columns.attnames)
    template = template_columns.instance(rows[0][:width], alias)
    versions = []
    for row in rows:
        if row[width] is None:  # the LEFT JOIN's row of a template without an active version
            continue
        version = version_columns.instance(row[width:], alias)
        version.template = template
        versions.append(version)
    return template, versions


@functools.lru_cache(maxsize=4)
def _active_versions_sql(alias: str) -> str:
    """Written from the models' own fields, so a field added by a migration is read too."""
    def col(model, name):
        return raw_sql.column(model, name, alias)

    select = f"{raw_sql.columns(EmailTemplate, 't', alias).sql}, {raw_sql.columns(EmailTemplateVersion, 'v', alias).sql}"
    return (
        f"SELECT {select} FROM {raw_sql.table(EmailTemplate, alias)} t "
        f"LEFT JOIN {raw_sql.table(EmailTemplateVersion, alias)} v "
        f"ON v.{col(EmailTemplateVersion, 'template')} = t.{col(EmailTemplate, 'id')} "
        f"AND v.{col(EmailTemplateVersion, 'is_active')} "
        f"WHERE t.{col(EmailTemplate, 'key')} = %s ORDER BY v.{col(EmailTemplateVersion, 'language')}"
    )


#: A language tag as callers write them: `fr`, `fr-BE`, `en_GB`, `zh-Hant-TW`.
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*")


def requested_language(language: object) -> str | None:
    """The language a send asks for, as `LANGUAGES` spells it (`fr-BE` → `fr-be`); None for the default.

    It must be one of `LANGUAGES` or a regional variant of one (which falls back to it, as
    `fr-BE` falls back to `fr`): anything else would silently send the default language, so
    it is refused naming `language`, as adding a version in an unknown language is.
    """
    if language is None or language == "":
        return None
    known = {code.lower(): code for code, _ in settings.LANGUAGES}
    expected = _("expected one of %(languages)s, or a regional variant such as fr-BE") % {
        "languages": ", ".join(sorted(known.values())),
    }
    if not isinstance(language, str):
        raise TemplateError(
            _("A language code is a string; got %(type)s (%(expected)s).")
            % {"type": type(language).__name__, "expected": expected},
            field="language", code="unknown_language",
        )
    tag = language.strip().lower().replace("_", "-")
    if not _LANGUAGE_TAG.fullmatch(tag) or (tag not in known and tag.split("-")[0] not in known):
        raise TemplateError(
            _("Unknown language %(language)s; %(expected)s.") % {"language": repr(language[:20]), "expected": expected},
            field="language", code="unknown_language",
        )
    return known.get(tag, tag)


def select_version(template: EmailTemplate, *, language: str | None = None) -> EmailTemplateVersion:
    """The active version in `language` (checked by `requested_language`), else in the default language."""
    language = requested_language(language)
    active = getattr(template, "active_versions", None)
    if active is None:
        active = template.versions.filter(is_active=True)
    versions = {v.language: v for v in active}
    primary = (language or "").split("-")[0]
    for candidate in (language, primary, template.default_language):
        if candidate and candidate in versions:
            return versions[candidate]
    raise TemplateError(
        _("Email template %(key)s has no active version in %(language)s nor in its default language %(default)s.")
        % {"key": repr(template.key), "language": repr(language or template.default_language),
           "default": repr(template.default_language)},
        field="template_key", code="no_active_version",
    )


def validate_version_content(
    *,
    template: EmailTemplate,
    subject: str,
    html_content: str,
    text_content: str = "",
    preheader: str = "",
) -> None:
    """Everything a save must satisfy: syntax, declarations, a known layout, a one-line subject."""
    if not subject or not subject.strip():
        raise TemplateError(_("A subject is required."), field="subject", code="required")
    problem = subject_problem(subject.strip())
    if problem:
        raise TemplateError(
            _("The subject template must be one line of text: %(problem)s.") % {"problem": problem},
            field="subject", code="header_injection",
        )
    if not html_content or not html_content.strip():
        raise TemplateError(_("HTML content is required."), field="html_content", code="required")
    check_declarations(
        {"subject": subject, "preheader": preheader, "html_content": html_content, "text_content": text_content},
        required=template.required_variables,
        optional=template.optional_variables,
    )
    if template.layout and not layout_exists(template.layout):
        raise TemplateError(
            _("Layout %(layout)s does not exist in %(directory)s.")
            % {"layout": repr(template.layout), "directory": settings.EMAIL_LAYOUTS_DIR},
            field="layout", code="unknown_layout",
        )
    trial_render(template=template, source=VersionSource(
        subject=subject, html_content=html_content, text_content=text_content, preheader=preheader,
    ))


def trial_render(*, template: EmailTemplate, source: VersionSource) -> None:
    """Render the candidate with the template's sample variables, as a send would.

    What only shows when rendering (a name built at render time to reach an internal, a
    loop too large, a subject that renders two lines) then refuses the save instead of
    every send. Skipped when the samples do not cover the required variables: a guess at
    their values could refuse a sound template.
    """
    samples = template.sample_variables if isinstance(template.sample_variables, dict) else {}
    if any(samples.get(name) is None for name in template.required_variables):
        return
    try:
        render(source, variables=samples, required=template.required_variables,
               optional=template.optional_variables, layout_name=template.layout)
    except NotificationError as exc:
        raise type(exc)(
            _("With the template's sample variables: %(message)s") % {"message": exc.message}, field=exc.field
        ) from None


@transaction.atomic
def create_template_version(
    *,
    template: EmailTemplate,
    language: str,
    subject: str,
    html_content: str,
    text_content: str = "",
    preheader: str = "",
    created_by=None,
    activate: bool = True,
) -> EmailTemplateVersion:
    """Validate and add a version; it becomes the active one for its language.

    With `activate=False` it is added inactive and the active version stays as it is (an
    import with `--no-activate`, to review a wording before it goes live); its number is
    still the next one.
    """
    languages = {code for code, _ in settings.LANGUAGES}
    if language not in languages:
        raise TemplateError(
            _("Unknown language %(language)s; expected one of %(languages)s.")
            % {"language": repr(language), "languages": ", ".join(sorted(languages))},
            field="language", code="unknown_language",
        )
    # Browsers send a textarea's lines with CRLF: stored sources keep one line ending, LF.
    html_content, text_content = _lf(html_content), _lf(text_content)
    validate_version_content(
        template=template, subject=subject, html_content=html_content, text_content=text_content, preheader=preheader
    )
    locked = EmailTemplate.objects.select_for_update().get(pk=template.pk)
    versions = EmailTemplateVersion.objects.filter(template=locked, language=language)
    last = versions.order_by("-version").values_list("version", flat=True).first() or 0
    if activate:
        versions.filter(is_active=True).update(is_active=False)
    return EmailTemplateVersion.objects.create(
        template=locked,
        language=language,
        version=last + 1,
        subject=subject.strip(),
        preheader=preheader.strip(),
        html_content=html_content,
        text_content=text_content,
        created_by=created_by,
        is_active=activate,
    )


def _lf(source: str) -> str:
    return source.replace("\r\n", "\n")


@transaction.atomic
def create_template(*, versions: Mapping[str, Mapping[str, str]], created_by=None, **fields) -> EmailTemplate:
    """Create a template and one version per language (`{language: {subject, html_content, ...}}`)."""
    template = EmailTemplate(created_by=created_by, updated_by=created_by, **fields)
    template.full_clean()
    template.save()
    for language, parts in versions.items():
        create_template_version(template=template, language=language, created_by=created_by, **parts)
    return template
