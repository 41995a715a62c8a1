"""Templates between files and the database: export, and the import that compares first.

An import is planned before it is applied: `plan_import` compares the files with the
database and says what differs; `--check` prints that plan (rehearsed, so it also fails on
what the import would refuse), and `apply_import` carries it out in one transaction, so
either every template of the folder is taken or none is. The folder layout itself is
`authoring.files`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from notifications.exceptions import NotificationError, TemplateFileError
from notifications.models import EmailTemplate, EmailTemplateVersion
from notifications.authoring.files import (
    LAYOUTS_FOLDER,
    PART_FILES,
    TemplateFiles,
    differing_files,
    folder_files,
    read_templates_directory,
    template_snapshot,
)
from notifications.authoring.versions import VersionContent, create_template_version, validate_version_content


@dataclass
class ExportReport:
    templates: list[str] = field(default_factory=list)
    created: list[Path] = field(default_factory=list)
    replaced: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)


def export_templates(*, directory: Path, keys: Sequence[str] | None = None) -> ExportReport:
    """Write each template (or those of `keys`) as a folder under `directory`.

    Files the export writes are overwritten; nothing else is touched or deleted (a language
    folder of a version deactivated since an earlier export stays, and an import would add
    it again: remove it by hand). `layouts/` is never written into.
    """
    directory = Path(directory)
    templates = EmailTemplate.objects.order_by("key")
    if keys:
        templates = templates.filter(key__in=keys)
        missing = sorted(set(keys) - set(templates.values_list("key", flat=True)))
        if missing:
            raise TemplateFileError(
                _("No email template with key %(key)s.") % {"key": ", ".join(map(repr, missing))}, field="key"
            )
    templates = list(templates)
    if any(template.key == LAYOUTS_FOLDER for template in templates):
        raise TemplateFileError(
            _("%(path)s: the template %(key)s cannot be exported there: that folder holds the layouts.")
            % {"path": directory / LAYOUTS_FOLDER, "key": repr(LAYOUTS_FOLDER)}, field="key",
        )
    report = ExportReport()
    for template in templates:
        snapshot = template_snapshot(template, folder=directory / template.key)
        for relative, text in folder_files(snapshot).items():
            _write_file(snapshot.folder / relative, text.encode("utf-8"), report)
        report.templates.append(template.key)
    return report


def _write_file(path: Path, data: bytes, report: ExportReport) -> None:
    try:
        if path.is_file() and path.read_bytes() == data:
            report.unchanged.append(path)
            return
        existed = path.exists()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    except OSError as exc:
        raise TemplateFileError(
            _("%(path)s: cannot be written (%(problem)s).") % {"path": exc.filename or path, "problem": exc.strerror},
            path=path,
        ) from None
    (report.replaced if existed else report.created).append(path)


# --- Comparing and importing ------------------------------------------------------------


@dataclass(frozen=True)
class FieldChange:
    name: str
    old: Any
    new: Any


@dataclass(frozen=True)
class LanguageChange:
    """A language whose files differ from its active version (or that has none)."""

    language: str
    content: VersionContent
    active_version: int | None
    #: The files that differ from the active version (all of them when there is none).
    files: tuple[str, ...]
    #: The newest version, when it is an inactive one already holding these files (`--no-activate` ran before).
    pending_version: int | None = None


@dataclass(frozen=True)
class TemplatePlan:
    files: TemplateFiles
    exists: bool
    field_changes: tuple[FieldChange, ...] = ()
    language_changes: tuple[LanguageChange, ...] = ()

    @property
    def key(self) -> str:
        return self.files.key

    @property
    def unchanged(self) -> bool:
        return self.exists and not self.field_changes and not self.language_changes


@dataclass(frozen=True)
class ImportPlan:
    directory: Path
    templates: tuple[TemplatePlan, ...]
    #: Templates in the database with no folder in `directory` (left alone; listed for information).
    only_in_database: tuple[str, ...] = ()

    @property
    def differs(self) -> bool:
        return any(not plan.unchanged for plan in self.templates)


@transaction.atomic
def plan_import(*, directory: Path, keys: Sequence[str] | None = None) -> ImportPlan:
    """Compare the folders under `directory` with the database; writes nothing.

    The templates compared are locked (as `create_template_version` locks one), so when
    the plan is applied in the same transaction no editor has changed them in between.

    Fields are compared as values (a JSON object's key order does not matter); each
    language's files with its active version, normalised as a save stores them (CRLF → LF,
    the subject and preheader stripped). Templates and languages only in the database are
    not differences: an import never removes anything.
    """
    folders = read_templates_directory(directory, keys=keys)
    existing = {t.key: t for t in EmailTemplate.objects.select_for_update().filter(key__in=[f.key for f in folders])}
    plans = [_plan_template(files, existing.get(files.key)) for files in folders]
    only_in_database: tuple[str, ...] = ()
    if not keys:
        in_files = {files.key for files in folders}
        only_in_database = tuple(key for key in EmailTemplate.objects.order_by("key").values_list("key", flat=True)
                                 if key not in in_files)
    return ImportPlan(directory=Path(directory), templates=tuple(plans), only_in_database=only_in_database)


def _plan_template(files: TemplateFiles, template: EmailTemplate | None) -> TemplatePlan:
    if template is None:
        changes = tuple(
            LanguageChange(language=language, content=content, active_version=None, files=tuple(PART_FILES.values()))
            for language, content in sorted(files.versions.items())
        )
        return TemplatePlan(files=files, exists=False, language_changes=changes)
    field_changes = tuple(
        FieldChange(name=name, old=getattr(template, name), new=value)
        for name, value in files.fields.items() if getattr(template, name) != value
    )
    versions: dict[str, list[EmailTemplateVersion]] = {}
    for version in template.versions.order_by("language", "-version"):
        versions.setdefault(version.language, []).append(version)
    language_changes = []
    for language, content in sorted(files.versions.items()):
        history = versions.get(language, [])
        active = next((v for v in history if v.is_active), None)
        if active is not None and VersionContent.of(active).normalised() == content:
            continue
        newest = history[0] if history else None
        pending = (newest.version if newest and not newest.is_active
                   and VersionContent.of(newest).normalised() == content else None)
        language_changes.append(LanguageChange(
            language=language, content=content, active_version=active.version if active else None,
            files=tuple(differing_files(content, VersionContent.of(active).normalised())) if active else tuple(PART_FILES.values()),
            pending_version=pending,
        ))
    return TemplatePlan(files=files, exists=True, field_changes=field_changes, language_changes=tuple(language_changes))


@dataclass(frozen=True)
class TemplateOutcome:
    key: str
    created: bool = False
    fields_updated: tuple[str, ...] = ()
    #: (language, version number, active) of each version added.
    versions_added: tuple[tuple[str, int, bool], ...] = ()
    #: (language, version number) of inactive versions that already held the files.
    versions_pending: tuple[tuple[str, int], ...] = ()


@transaction.atomic
def apply_import(*, plan: ImportPlan, activate: bool = True, user=None) -> list[TemplateOutcome]:
    """Carry out `plan` in one transaction: every template is taken, or none is.

    Creates the templates that do not exist, updates the fields that differ (validated by
    `EmailTemplate.full_clean`) and adds a version through `create_template_version` for
    each language whose files differ, active unless `activate` is false. With `activate`
    false, a language whose newest (inactive) version already holds the files gets no
    second copy. Any refusal is a `TemplateFileError` naming the file.
    """
    return [_apply_template(template_plan, activate=activate, user=user) for template_plan in plan.templates]


def rehearse_import(*, plan: ImportPlan, activate: bool = True, user=None) -> list[TemplateOutcome]:
    """`apply_import`, rolled back: what an import would do, refusals included, with nothing written.

    `--check` and `--dry-run` rehearse, so a template the import would refuse (an invalid
    field, a version that fails its trial render) fails the check too, not only the import.
    """
    with transaction.atomic():
        outcomes = apply_import(plan=plan, activate=activate, user=user)
        transaction.set_rollback(True)
    return outcomes


def _apply_template(plan: TemplatePlan, *, activate: bool, user) -> TemplateOutcome:
    files = plan.files
    if plan.unchanged:
        return TemplateOutcome(key=plan.key)
    if not plan.exists:
        template = EmailTemplate(created_by=user, updated_by=user, **files.fields)
        _full_clean(template, files)
        template.save()
    else:
        template = EmailTemplate.objects.select_for_update().get(key=plan.key)
        if plan.field_changes:
            for change in plan.field_changes:
                setattr(template, change.name, change.new)
            template.updated_by = user
            _full_clean(template, files)
            template.save(update_fields=[c.name for c in plan.field_changes] + ["updated_by", "updated_at"])
            replaced = {change.language for change in plan.language_changes} if activate else set()
            _check_kept_versions(template, files, keep_languages_except=replaced)
    added, pending = [], []
    for change in plan.language_changes:
        if not activate and change.pending_version is not None:
            pending.append((change.language, change.pending_version))
            continue
        version = _add_version(template, files, change, activate=activate, user=user)
        added.append((change.language, version.version, version.is_active))
    return TemplateOutcome(
        key=plan.key, created=not plan.exists, fields_updated=tuple(c.name for c in plan.field_changes),
        versions_added=tuple(added), versions_pending=tuple(pending),
    )


def _full_clean(template: EmailTemplate, files: TemplateFiles) -> None:
    try:
        template.full_clean()
    except ValidationError as exc:
        errors = exc.message_dict
        name = next(iter(errors))
        raise TemplateFileError(
            _("%(path)s: %(field)s: %(problem)s")
            % {"path": files.json_path, "field": name, "problem": " ".join(errors[name])},
            path=files.json_path, field=name,
        ) from None


def _check_kept_versions(template: EmailTemplate, files: TemplateFiles, *, keep_languages_except: set[str]) -> None:
    """The active versions the import keeps must still pass with the template's new fields."""
    for version in template.versions.filter(is_active=True).exclude(language__in=keep_languages_except):
        try:
            validate_version_content(template=template, subject=version.subject, html_content=version.html_content,
                                     text_content=version.text_content, preheader=version.preheader)
        except NotificationError as exc:
            raise TemplateFileError(
                _("%(path)s: the active version %(version)s in %(language)s does not pass with these fields: "
                  "%(problem)s") % {"path": files.json_path, "version": version.version,
                                    "language": version.language, "problem": exc.message},
                path=files.json_path, field=exc.field,
            ) from None


def _add_version(template: EmailTemplate, files: TemplateFiles, change: LanguageChange, *, activate: bool, user):
    folder = files.folder / change.language
    try:
        return create_template_version(template=template, language=change.language, created_by=user,
                                       activate=activate, **change.content.as_dict())
    except NotificationError as exc:
        path = folder / PART_FILES[exc.field] if exc.field in PART_FILES else folder
        raise TemplateFileError(
            _("%(path)s: %(problem)s") % {"path": path, "problem": exc.message}, path=path, field=exc.field,
        ) from None
