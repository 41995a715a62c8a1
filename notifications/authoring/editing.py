"""The template editor's writes: one save of a template's fields with the versions they need,
and making an older version active again (a rollback).

A change of declared variables and the wording that uses them are one edit: saving them
apart would leave, between the two saves, an active version that no longer matches its
template (every send of it refused). So the template's fields and one new version per
changed language are written in one transaction, and an unchanged active version that the
new declarations would break refuses the whole save, naming that version. Every version made
active here is recorded (`TemplateVersionActivation`) with who and when.

A save says what it was based on (the editor's form as it was opened, an API `If-Match` or
`base_version`) and is refused when another save came between (`template_concurrency`):
the last writer never wins unseen.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from notifications.exceptions import NotificationError, TemplateDeclarationError, TemplateError
from notifications.models import EmailTemplate, EmailTemplateVersion, TemplateVersionActivation

from notifications.authoring.concurrency import current_state, refuse_if_stale
from notifications.authoring.preview import Problem
from notifications.authoring.versions import PARTS, VersionContent, create_template_version, validate_version_content

#: The refusals of a stale save; `%(changes)s` says who saved what and when.
EDITOR_STALE = gettext_lazy(
    "Not saved: this template changed after you opened it: %(changes)s. Your text is kept below: "
    "compare it with theirs, merge by hand and save again."
)
API_STALE = gettext_lazy(
    "Not saved: the template changed after the state this request was based on: %(changes)s. "
    "Read it again (GET), merge, and send its new ETag in If-Match."
)

class VersionRefused(TemplateError):
    """A language's wording (new, or the active one left as it is) that the edit cannot keep.

    `language` and `part` say where: the editor shows the message beside that part.
    """

    code = "version_refused"

    def __init__(self, message: str, *, language: str, part: str | None = None, problem: Problem | None = None) -> None:
        super().__init__(message, field=f"{language}.{part}" if part else None)
        self.language = language
        self.part = part
        #: As the editor shows it: one sentence, a folded detail, the line to highlight.
        self.problem = problem or Problem(message=message, part=part)


@dataclass(frozen=True)
class EditResult:
    template: EmailTemplate
    new_versions: list[EmailTemplateVersion]


@dataclass(frozen=True)
class SavedVersion:
    """A version added by `save_version`: `conditional` is False when the save said nothing of
    what it was based on (it replaced whatever was active, unseen); `etag` the new state's."""

    version: EmailTemplateVersion
    conditional: bool
    etag: str


def plan_template_edit(
    *, template: EmailTemplate, versions: Mapping[str, Mapping[str, str] | VersionContent]
) -> dict[str, VersionContent]:
    """The languages that get a new version, each with its content; raises if the edit cannot be saved.

    `template` carries the edited field values (not saved yet). A language whose content is
    given and differs from its active version gets a new version, validated against the
    edited declarations; every other active version must still satisfy them, or the edit is
    refused naming it. Writes nothing.
    """
    try:
        template.full_clean()
    except ValidationError as exc:
        first_field, messages = next(iter(exc.message_dict.items()))
        raise TemplateError(messages[0], field=None if first_field == "__all__" else first_field) from None
    active = {v.language: v for v in template.versions.filter(is_active=True)} if template.pk else {}
    languages = [code for code, _name in settings.LANGUAGES]
    unknown = sorted(set(versions) - set(languages))
    if unknown:
        raise TemplateError(
            _("Unknown language %(language)s; expected one of %(languages)s.")
            % {"language": repr(unknown[0]), "languages": ", ".join(languages)},
            field="language", code="unknown_language",
        )
    planned: dict[str, VersionContent] = {}
    for language in languages:
        given = versions.get(language)
        content = (given if isinstance(given, VersionContent) else VersionContent.of(given or {})).normalised()
        current = active.get(language)
        if not content.is_empty and (current is None or content != VersionContent.of(current)):
            _validate(template, content, language=language, label=f"[{language}]")
            planned[language] = content
        elif current is not None:
            _validate(template, VersionContent.of(current), language=language, label=str(current), kept=True)
    return planned


def _validate(template: EmailTemplate, content: VersionContent, *, language: str, label: str,
              kept: bool = False) -> None:
    try:
        validate_version_content(template=template, **content.as_dict())
    except NotificationError as exc:
        if kept:
            message = _(
                "%(version)s, the active version, would no longer fit the template: %(problem)s "
                "Give its new wording in the same save."
            ) % {"version": label, "problem": exc.message}
            raise VersionRefused(message, language=language) from None
        message = _("%(language)s: %(problem)s") % {"language": label, "problem": exc.message}
        part = exc.field if exc.field in PARTS else None
        problem = Problem.of(exc, message=message)
        if exc.code == "render_limit_exceeded":
            problem = Problem(message=_("%(language)s: %(problem)s") % {"language": label, "problem": problem.message},
                              detail=message, part=part)
        raise VersionRefused(message, language=language, part=part, problem=problem) from None


@transaction.atomic
def save_template_edit(
    *, template: EmailTemplate, fields: Mapping[str, object],
    versions: Mapping[str, Mapping[str, str] | VersionContent], user, opened: str | None = None,
) -> EditResult:
    """Apply `fields` to the template and add the versions they need, all or nothing.

    `versions` is `{language: {subject, preheader, html_content, text_content}}`; a
    language left out or unchanged keeps its active version, which must fit the new fields.
    The template row is locked first, so two editors' saves follow one another; `opened`,
    the state the editor's form was opened on, refuses the save (`StaleEdit`) when another
    came between.
    """
    if template.pk and not template._state.adding:
        template = EmailTemplate.objects.select_for_update().get(pk=template.pk)
        refuse_if_stale(template=template, opened=opened, message=str(EDITOR_STALE))
    else:
        template.created_by = user
    for name, value in fields.items():
        setattr(template, name, value)
    planned = plan_template_edit(template=template, versions=versions)
    template.updated_by = user
    template.save()
    created = []
    for language, content in planned.items():
        previous = template.versions.filter(language=language, is_active=True).first()
        version = create_template_version(template=template, language=language, created_by=user, **content.as_dict())
        TemplateVersionActivation.objects.create(
            template=template, language=language, version=version, previous_version=previous, activated_by=user,
        )
        created.append(version)
    return EditResult(template=template, new_versions=created)


@transaction.atomic
def save_version(
    *, template: EmailTemplate, language: str, content: VersionContent, user,
    if_match: list[str] | None = None, base_version: int | None = None,
) -> SavedVersion:
    """Add one language's wording as its active version, recorded, unless the base is stale.

    `if_match` (the tags of an `If-Match` header) or `base_version` (the number of the
    language's active version the wording started from; 0 when there was none) say what the
    wording was based on; without either the save is unconditional, as the API's `PUT` was
    before they existed.
    """
    languages = [code for code, _name in settings.LANGUAGES]
    if language not in languages:
        raise TemplateError(
            _("Unknown language %(language)s; expected one of %(languages)s.")
            % {"language": repr(language), "languages": ", ".join(languages)},
            field="language", code="unknown_language",
        )
    template = EmailTemplate.objects.select_for_update().get(pk=template.pk)
    conditional = refuse_if_stale(template=template, if_match=if_match, base_version=base_version,
                                  language=language, message=str(API_STALE))
    previous = template.versions.filter(language=language, is_active=True).first()
    version = create_template_version(template=template, language=language, created_by=user, **content.as_dict())
    TemplateVersionActivation.objects.create(
        template=template, language=language, version=version, previous_version=previous, activated_by=user,
    )
    return SavedVersion(version=version, conditional=conditional, etag=current_state(template).etag)


@transaction.atomic
def activate_version(*, version: EmailTemplateVersion, user) -> TemplateVersionActivation:
    """Make `version` the active one for its language again (a rollback), recorded.

    Refused, naming the version, when it no longer fits the template's current declarations
    (or layout, or sample variables): it would fail every send.
    """
    template = EmailTemplate.objects.select_for_update().get(pk=version.template_id)
    version = EmailTemplateVersion.objects.get(pk=version.pk)
    if version.is_active:
        raise TemplateError(
            _("Version %(version)s is already the active one.") % {"version": str(version)}, code="already_active"
        )
    try:
        validate_version_content(template=template, **VersionContent.of(version).as_dict())
    except NotificationError as exc:
        raise TemplateDeclarationError(
            _("Version %(version)s cannot be made active: it no longer fits the template: %(problem)s")
            % {"version": str(version), "problem": exc.message}
        ) from None
    previous = EmailTemplateVersion.objects.filter(
        template=template, language=version.language, is_active=True
    ).first()
    if previous is not None:
        previous.is_active = False
        previous.save(update_fields=["is_active"])
    version.is_active = True
    version.save(update_fields=["is_active"])
    return TemplateVersionActivation.objects.create(
        template=template, language=version.language, version=version, previous_version=previous,
        rollback=True, activated_by=user,
    )
