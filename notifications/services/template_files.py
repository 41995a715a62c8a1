"""Templates as files: the folder layout, read and written, and the import that compares first.

One folder per template, named by its key: `template.json` (every field a user sets, in
`TEMPLATE_FIELDS` order) and one folder per language holding `subject.txt`,
`preheader.txt`, `body.html` and `body.txt`. `fixtures/email_templates/` is such an export,
so the default templates, a template repository under version control and the admin all
speak the same layout. `layouts/` beside the templates holds the shared layouts, which are
not templates: it is skipped both ways.

The formatting is exact so an export is byte-stable (a repository diff shows only real
edits): UTF-8, LF line endings, `template.json` indented by two with its nested objects'
keys sorted (PostgreSQL's jsonb does not keep their order) and a trailing newline, the
subject and preheader on one line with a newline, the bodies exactly as stored.

An import is planned before it is applied: `plan_import` compares the files with the
database and says what differs; `--check` prints that plan, and `apply_import` carries it
out in one transaction, so either every template of the folder is taken or none is.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from notifications.exceptions import InputError, NotificationError, TemplateFileError
from notifications.jsoninput import check_value as check_json_value
from notifications.models import EmailTemplate, EmailTemplateVersion
from notifications.services.templates import create_template_version, validate_version_content

#: Every field of a template a user sets, in the order `template.json` lists them.
TEMPLATE_FIELDS: tuple[str, ...] = (
    "key", "name", "description", "category", "kind", "lane", "required_variables", "optional_variables",
    "sensitive_variables", "attachments_allowed", "max_attempts", "default_language", "extra_recipients",
    "sample_variables", "layout", "is_active",
)
#: The JSON type each field must have (checked before the model's own validation).
FIELD_TYPES: dict[str, type] = {
    "key": str, "name": str, "description": str, "category": str, "kind": str, "lane": str,
    "required_variables": list, "optional_variables": dict, "sensitive_variables": list,
    "attachments_allowed": bool, "max_attempts": int, "default_language": str, "extra_recipients": list,
    "sample_variables": dict, "layout": str, "is_active": bool,
}
TEMPLATE_FILE = "template.json"
#: A version's part → its file in the language folder.
PART_FILES: dict[str, str] = {
    "subject": "subject.txt", "preheader": "preheader.txt", "html_content": "body.html", "text_content": "body.txt",
}
REQUIRED_PART_FILES = ("subject.txt", "body.html")
#: The folder of shared layouts beside the templates (`EMAIL_LAYOUTS_DIR`): not a template.
LAYOUTS_FOLDER = "layouts"


@dataclass(frozen=True)
class VersionContent:
    """One language's wording, normalised as `create_template_version` stores it."""

    subject: str
    html_content: str
    preheader: str = ""
    text_content: str = ""

    @classmethod
    def normalised(cls, *, subject: str, html_content: str, preheader: str = "", text_content: str = "") -> VersionContent:
        return cls(subject=subject.strip(), preheader=preheader.strip(),
                   html_content=_lf(html_content), text_content=_lf(text_content))

    @classmethod
    def of(cls, version: EmailTemplateVersion) -> VersionContent:
        return cls.normalised(subject=version.subject, preheader=version.preheader,
                              html_content=version.html_content, text_content=version.text_content)

    def as_parts(self) -> dict[str, str]:
        return {"subject": self.subject, "preheader": self.preheader,
                "html_content": self.html_content, "text_content": self.text_content}

    def differing_files(self, other: VersionContent) -> list[str]:
        """The file names of the parts that differ (`body.html`, ...)."""
        mine, theirs = self.as_parts(), other.as_parts()
        return [PART_FILES[part] for part in PART_FILES if mine[part] != theirs[part]]


@dataclass(frozen=True)
class TemplateFiles:
    """A template folder's content: the fields `template.json` gives and each language's wording.

    `fields` holds only what the file lists (a field it leaves out keeps its value on
    import, or the model's default on creation); an export always lists every field.
    """

    key: str
    fields: dict[str, Any]
    versions: dict[str, VersionContent]
    folder: Path

    @property
    def json_path(self) -> Path:
        return self.folder / TEMPLATE_FILE


def _lf(source: str) -> str:
    return source.replace("\r\n", "\n")


# --- Reading ----------------------------------------------------------------------------


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise TemplateFileError(_("%(path)s: cannot be read (%(problem)s).") % {"path": path, "problem": exc.strerror},
                                path=path) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TemplateFileError(
            _("%(path)s: not UTF-8 text (at byte offset %(position)s).") % {"path": path, "position": exc.start}, path=path
        ) from None
    if "\x00" in text:  # PostgreSQL stores no NUL in text: refused here rather than as a database error
        raise TemplateFileError(
            _("%(path)s: contains a NUL character (U+0000), which cannot be stored.") % {"path": path}, path=path
        )
    return text


def _visible(entries: Iterable[Path]) -> list[Path]:
    """Entries that are not hidden (`.git`, `.DS_Store`, an editor's swap file), sorted."""
    return sorted(entry for entry in entries if not entry.name.startswith("."))


def read_template_folder(folder: Path) -> TemplateFiles:
    """Read one template folder, refusing anything it would otherwise silently ignore.

    A `TemplateFileError` names the file and the problem: bad JSON, an unknown field, a field
    of the wrong type, a key that is not the folder's name, a language not in `LANGUAGES`, a
    missing `subject.txt` or `body.html`, an unknown file, text that is not UTF-8.
    """
    folder = Path(folder)
    json_path = folder / TEMPLATE_FILE
    if not json_path.is_file():
        raise TemplateFileError(_("%(path)s: no template.json in this template folder.") % {"path": folder},
                                path=folder)
    fields = _read_fields(json_path)
    if fields.get("key") != folder.name:
        raise TemplateFileError(
            _("%(path)s: key %(key)s is not the folder's name %(folder)s.")
            % {"path": json_path, "key": repr(fields.get("key")), "folder": repr(folder.name)},
            path=json_path, field="key",
        )
    languages = {code for code, _name in settings.LANGUAGES}
    versions: dict[str, VersionContent] = {}
    for entry in _visible(folder.iterdir()):
        if entry.name == TEMPLATE_FILE:
            continue
        if not entry.is_dir():
            raise TemplateFileError(
                _("%(path)s: unknown file; a template folder holds template.json and one folder per language.")
                % {"path": entry}, path=entry,
            )
        if entry.name not in languages:
            raise TemplateFileError(
                _("%(path)s: unknown language %(language)s; expected one of %(languages)s.")
                % {"path": entry, "language": repr(entry.name), "languages": ", ".join(sorted(languages))},
                path=entry, field="language",
            )
        versions[entry.name] = _read_language_folder(entry)
    return TemplateFiles(key=folder.name, fields=fields, versions=versions, folder=folder)


def _read_fields(path: Path) -> dict[str, Any]:
    try:
        fields = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise TemplateFileError(
            _("%(path)s: not valid JSON (line %(line)s, column %(column)s: %(problem)s).")
            % {"path": path, "line": exc.lineno, "column": exc.colno, "problem": exc.msg}, path=path,
        ) from None
    except RecursionError:
        raise TemplateFileError(
            _("%(path)s: nested deeper than %(max_depth)s levels (API_MAX_JSON_DEPTH).")
            % {"path": path, "max_depth": settings.API_MAX_JSON_DEPTH}, path=path,
        ) from None
    if not isinstance(fields, dict):
        raise TemplateFileError(_("%(path)s: a JSON object of the template's fields is expected.") % {"path": path},
                                path=path)
    unknown = sorted(set(fields) - set(TEMPLATE_FIELDS))
    if unknown:
        raise TemplateFileError(
            _("%(path)s: unknown fields %(names)s.") % {"path": path, "names": ", ".join(unknown)},
            path=path, field=unknown[0],
        )
    for name, value in fields.items():
        expected = FIELD_TYPES[name]
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise TemplateFileError(
                _("%(path)s: %(field)s must be a JSON %(expected)s, not %(value)s.")
                % {"path": path, "field": name, "expected": _json_type_name(expected), "value": json.dumps(value)[:60]},
                path=path, field=name,
            )
        try:  # a NUL (PostgreSQL stores none) or nesting past API_MAX_JSON_DEPTH, in any field
            check_json_value(value, field=name, max_depth=settings.API_MAX_JSON_DEPTH)
        except InputError as exc:
            raise TemplateFileError(
                _("%(path)s: %(field)s: %(problem)s") % {"path": path, "field": name, "problem": exc.message},
                path=path, field=name,
            ) from None
    return fields


def _json_type_name(expected: type) -> str:
    return {str: _("string"), list: _("array"), dict: _("object"), bool: _("boolean (true or false)"),
            int: _("integer")}[expected]


def _read_language_folder(folder: Path) -> VersionContent:
    known = set(PART_FILES.values())
    for entry in _visible(folder.iterdir()):
        if entry.name not in known or not entry.is_file():
            raise TemplateFileError(
                _("%(path)s: unknown file; a language folder holds %(files)s.")
                % {"path": entry, "files": ", ".join(PART_FILES.values())}, path=entry,
            )
    for name in REQUIRED_PART_FILES:
        if not (folder / name).is_file():
            raise TemplateFileError(_("%(path)s: missing (it is required).") % {"path": folder / name},
                                    path=folder / name)
    parts = {part: _read_text(folder / name) if (folder / name).is_file() else "" for part, name in PART_FILES.items()}
    return VersionContent.normalised(**parts)


def read_templates_directory(directory: Path, *, keys: Sequence[str] | None = None) -> list[TemplateFiles]:
    """Every template folder under `directory` (or those of `keys`), skipping `layouts/` and hidden entries.

    A folder without `template.json` is refused by name rather than skipped, so a template
    whose file was renamed by mistake is not silently left out of an import or a check.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise TemplateFileError(_("%(path)s: no such folder.") % {"path": directory}, path=directory)
    folders = [entry for entry in _visible(directory.iterdir()) if entry.is_dir() and entry.name != LAYOUTS_FOLDER]
    if keys:
        found = {folder.name for folder in folders}
        missing = [key for key in keys if key not in found]
        if missing:
            raise TemplateFileError(
                _("%(path)s: no folder for the templates %(keys)s.") % {"path": directory, "keys": ", ".join(missing)},
                path=directory, field="key",
            )
        folders = [folder for folder in folders if folder.name in set(keys)]
    return [read_template_folder(folder) for folder in folders]


# --- Writing ----------------------------------------------------------------------------


def _json_value(value: Any, indent: str) -> str:
    """A value of `template.json`: objects one key a line (sorted), lists of plain values on one line."""
    inner = indent + "  "
    if isinstance(value, dict) and value:
        items = [f"{inner}{json.dumps(name, ensure_ascii=False)}: {_json_value(value[name], inner)}"
                 for name in sorted(value)]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(value, list) and any(isinstance(item, (dict, list)) for item in value):
        return "[\n" + ",\n".join(inner + _json_value(item, inner) for item in value) + "\n" + indent + "]"
    return json.dumps(value, ensure_ascii=False)


def template_json(fields: Mapping[str, Any]) -> str:
    """`template.json`'s exact text: `TEMPLATE_FIELDS` order, nested keys sorted, a trailing newline.

    Indented by two; a list of plain values (variable names, addresses) stays on one line,
    an object has one key a line: a diff then shows the one variable or sample that changed.
    """
    lines = [f"  {json.dumps(name)}: {_json_value(fields[name], '  ')}" for name in TEMPLATE_FIELDS if name in fields]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def folder_files(files: TemplateFiles) -> dict[str, str]:
    """Relative path → exact text of every file of a template folder.

    Every part file is written, an empty preheader or text body as an empty file, so an
    export over an earlier one never leaves a stale part behind.
    """
    out = {TEMPLATE_FILE: template_json(files.fields)}
    for language, content in sorted(files.versions.items()):
        parts = content.as_parts()
        for part, name in PART_FILES.items():
            text = parts[part]
            if part in ("subject", "preheader") and text:
                text += "\n"
            out[f"{language}/{name}"] = text
    return out


def template_snapshot(template: EmailTemplate, *, folder: Path) -> TemplateFiles:
    """What an export writes for `template`: every field and the active version of each language."""
    versions = {version.language: VersionContent.of(version)
                for version in template.versions.filter(is_active=True)}
    return TemplateFiles(
        key=template.key, fields={name: getattr(template, name) for name in TEMPLATE_FIELDS},
        versions=versions, folder=folder,
    )


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
        if active is not None and VersionContent.of(active) == content:
            continue
        newest = history[0] if history else None
        pending = newest.version if newest and not newest.is_active and VersionContent.of(newest) == content else None
        language_changes.append(LanguageChange(
            language=language, content=content, active_version=active.version if active else None,
            files=tuple(content.differing_files(VersionContent.of(active))) if active else tuple(PART_FILES.values()),
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
                                       activate=activate, **change.content.as_parts())
    except NotificationError as exc:
        path = folder / PART_FILES[exc.field] if exc.field in PART_FILES else folder
        raise TemplateFileError(
            _("%(path)s: %(problem)s") % {"path": path, "problem": exc.message}, path=path, field=exc.field,
        ) from None
