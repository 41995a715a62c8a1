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

Reading is confined to the folder it was given: a symbolic link (a file, a language folder
or a template folder) is refused, as is anything whose real path lies outside that folder,
so an import never turns a file elsewhere on the server (a key, `/etc/passwd`) into a
template version. Every file is read through one bounded read: a file over
`TEMPLATE_FILE_MAX_BYTES` is refused naming its path and the limit before a byte of it
is decoded or rendered (a 100 MB `body.html` once cost a minute and 600 MB of memory before
the render budget refused it), and so is anything that is not a regular file (a FIFO would
block the import forever).

The export and the import that compares first are `authoring.sync`.
"""
from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _

from notifications.exceptions import InputError, TemplateFileError
from notifications.jsoninput import check_value as check_json_value
from notifications.models import EmailTemplate
from notifications.authoring.versions import VersionContent
from notifications.formatting import number

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


def differing_files(content: VersionContent, other: VersionContent) -> list[str]:
    """The file names of the parts that differ (`body.html`, ...)."""
    return [PART_FILES[part] for part in content.differing_parts(other)]


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


# --- Reading ----------------------------------------------------------------------------


def _check_confined(path: Path, *, root: Path) -> None:
    """Refuse a symbolic link, or an entry whose real path is not inside `root` (already resolved)."""
    if path.is_symlink():
        raise TemplateFileError(
            _("%(path)s: a symbolic link; template folders are read only as real files and folders "
              "inside %(root)s.") % {"path": path, "root": root}, path=path,
        )
    if not path.resolve().is_relative_to(root):
        raise TemplateFileError(
            _("%(path)s: resolves outside %(root)s; template folders are read only inside it.")
            % {"path": path, "root": root}, path=path,
        )


def _read_bounded(path: Path) -> bytes:
    """At most `TEMPLATE_FILE_MAX_BYTES` of a regular file, never through a symbolic link."""
    limit = settings.TEMPLATE_FILE_MAX_BYTES
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        descriptor = os.open(path, flags)
    except OSError as exc:
        raise TemplateFileError(_("%(path)s: cannot be read (%(problem)s).") % {"path": path, "problem": exc.strerror},
                                path=path) from None
    with os.fdopen(descriptor, "rb") as file:
        status = os.fstat(file.fileno())
        if not stat.S_ISREG(status.st_mode):
            raise TemplateFileError(_("%(path)s: not a regular file.") % {"path": path}, path=path)
        if status.st_size > limit:
            raise _too_large(path, limit)
        raw = file.read(limit + 1)  # the file may have grown since fstat
    if len(raw) > limit:
        raise _too_large(path, limit)
    return raw


def _too_large(path: Path, limit: int) -> TemplateFileError:
    return TemplateFileError(
        _("%(path)s: larger than the %(limit)s bytes a template file may hold (TEMPLATE_FILE_MAX_BYTES).")
        % {"path": path, "limit": number(limit)}, path=path,
    )


def _read_text(path: Path, *, root: Path) -> str:
    _check_confined(path, root=root)
    raw = _read_bounded(path)
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


def read_template_folder(folder: Path, *, root: Path | None = None) -> TemplateFiles:
    """Read one template folder, refusing anything it would otherwise silently ignore.

    A `TemplateFileError` names the file and the problem: bad JSON, an unknown field, a field
    of the wrong type, a key that is not the folder's name, a language not in `LANGUAGES`, a
    missing `subject.txt` or `body.html`, an unknown file, text that is not UTF-8, a symbolic
    link or a path outside `root` (default: the folder itself), a file over
    `TEMPLATE_FILE_MAX_BYTES`.
    """
    folder = Path(folder)
    if root is None:
        root = folder.resolve()
    else:
        root = Path(root).resolve()
        _check_confined(folder, root=root)
    json_path = folder / TEMPLATE_FILE
    if not json_path.is_file():
        raise TemplateFileError(_("%(path)s: no template.json in this template folder.") % {"path": folder},
                                path=folder)
    fields = _read_fields(json_path, root=root)
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
        _check_confined(entry, root=root)
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
        versions[entry.name] = _read_language_folder(entry, root=root)
    return TemplateFiles(key=folder.name, fields=fields, versions=versions, folder=folder)


def _read_fields(path: Path, *, root: Path) -> dict[str, Any]:
    text = _read_text(path, root=root)
    try:
        fields = json.loads(text)
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


def _read_language_folder(folder: Path, *, root: Path) -> VersionContent:
    known = set(PART_FILES.values())
    for entry in _visible(folder.iterdir()):
        _check_confined(entry, root=root)
        if entry.name not in known:
            raise TemplateFileError(
                _("%(path)s: unknown file; a language folder holds %(files)s.")
                % {"path": entry, "files": ", ".join(PART_FILES.values())}, path=entry,
            )
        if not entry.is_file():
            raise TemplateFileError(_("%(path)s: not a regular file.") % {"path": entry}, path=entry)
    for name in REQUIRED_PART_FILES:
        if not (folder / name).is_file():
            raise TemplateFileError(_("%(path)s: missing (it is required).") % {"path": folder / name},
                                    path=folder / name)
    parts = {part: _read_text(folder / name, root=root) if (folder / name).is_file() else ""
             for part, name in PART_FILES.items()}
    return VersionContent(**parts).normalised()


def read_templates_directory(directory: Path, *, keys: Sequence[str] | None = None) -> list[TemplateFiles]:
    """Every template folder under `directory` (or those of `keys`), skipping `layouts/` and hidden entries.

    A folder without `template.json` is refused by name rather than skipped, so a template
    whose file was renamed by mistake is not silently left out of an import or a check.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise TemplateFileError(_("%(path)s: no such folder.") % {"path": directory}, path=directory)
    root = directory.resolve()  # the folder named may itself be a link (a deployment's `current/`)
    folders = [entry for entry in _visible(directory.iterdir()) if entry.is_dir() and entry.name != LAYOUTS_FOLDER]
    for folder in folders:  # a link to a folder is a folder to `is_dir`: refused, never followed
        _check_confined(folder, root=root)
    if keys:
        found = {folder.name for folder in folders}
        missing = [key for key in keys if key not in found]
        if missing:
            raise TemplateFileError(
                _("%(path)s: no folder for the templates %(keys)s.") % {"path": directory, "keys": ", ".join(missing)},
                path=directory, field="key",
            )
        folders = [folder for folder in folders if folder.name in set(keys)]
    return [read_template_folder(folder, root=root) for folder in folders]


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
        parts = content.as_dict()
        for part, name in PART_FILES.items():
            text = parts[part]
            if part in ("subject", "preheader") and text:
                text += "\n"
            out[f"{language}/{name}"] = text
    return out


def template_snapshot(template: EmailTemplate, *, folder: Path) -> TemplateFiles:
    """What an export writes for `template`: every field and the active version of each language."""
    versions = {version.language: VersionContent.of(version).normalised()
                for version in template.versions.filter(is_active=True)}
    return TemplateFiles(
        key=template.key, fields={name: getattr(template, name) for name in TEMPLATE_FIELDS},
        versions=versions, folder=folder,
    )
