"""Attachment checks: allowed type, size, and bytes that really are of the declared type.

The declared type may be a MIME type (`application/pdf`) or an extension (`pdf`); the
filename's extension must agree with it, and the content is sniffed (binary formats by
their signature with `filetype`, JSON by parsing, CSV as text) so that an executable
named `invoice.pdf` is refused.
"""
from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import PurePath

import filetype
from django.conf import settings
from django.utils.translation import gettext as _

from notifications.exceptions import AttachmentError, AttachmentTooLarge
from notifications.channels.email.headers import header_problem
from notifications.jsoninput import nesting_depth
from notifications.formatting import number

#: extension → canonical MIME type, and the MIME spellings accepted for it.
TYPES: dict[str, tuple[str, frozenset[str]]] = {
    "pdf": ("application/pdf", frozenset({"application/pdf", "application/x-pdf"})),
    "png": ("image/png", frozenset({"image/png"})),
    "jpg": ("image/jpeg", frozenset({"image/jpeg", "image/jpg", "image/pjpeg"})),
    "gif": ("image/gif", frozenset({"image/gif"})),
    "json": ("application/json", frozenset({"application/json", "text/json"})),
    "csv": ("text/csv", frozenset({"text/csv", "application/csv", "text/comma-separated-values"})),
    "txt": ("text/plain", frozenset({"text/plain"})),
}
_ALIASES = {"jpeg": "jpg"}


@dataclass(frozen=True)
class Attachment:
    """A checked attachment, ready to store and send."""

    filename: str
    content_type: str
    content: bytes

    @property
    def size(self) -> int:
        return len(self.content)

    @functools.cached_property
    def sha256(self) -> str:
        """Hashed once: a send to fifty recipients names the same bytes fifty-one times."""
        return hashlib.sha256(self.content).hexdigest()


def _extension_of(declared: str) -> str | None:
    declared = declared.strip().lower().split(";")[0]
    if "/" not in declared:
        return _ALIASES.get(declared, declared) if _ALIASES.get(declared, declared) in TYPES else None
    for extension, (_mime, spellings) in TYPES.items():
        if declared in spellings:
            return extension
    return None


def _content_matches(extension: str, content: bytes) -> bool:
    if extension in ("pdf", "png", "jpg", "gif"):
        kind = filetype.guess(content)
        expected = {"jpg": "jpg", "pdf": "pdf", "png": "png", "gif": "gif"}[extension]
        return kind is not None and kind.extension == expected
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        return False
    if "\x00" in text:
        return False
    if extension == "json":
        try:
            json.loads(text)
        except ValueError:
            return False
        return True
    if extension == "csv":
        try:
            rows = list(csv.reader(io.StringIO(text)))
        except csv.Error:
            return False
        return bool(rows)
    return True


def _check_json_depth(content: bytes, *, where: str) -> None:
    """Measured before `json.loads()` sniffs it: a file nested thousands deep exhausts its stack."""
    max_depth = settings.API_MAX_JSON_DEPTH
    if nesting_depth(content.decode("utf-8-sig", errors="replace")) > max_depth:
        raise AttachmentError(
            _("%(where)s: the JSON is nested deeper than %(max_depth)s levels (API_MAX_JSON_DEPTH).")
            % {"where": where, "max_depth": max_depth},
            code="nesting_too_deep",
        )


def check_attachment(
    *, filename: str, content_type: str, content: bytes, allowed: list[str], max_bytes: int, index: int = 0
) -> Attachment:
    """Return the attachment if it may be sent; raise `AttachmentError` saying why not."""
    if filename:
        where = _("Attachment %(number)s (%(filename)s)") % {"number": index + 1, "filename": repr(filename)}
    else:
        where = _("Attachment %(number)s") % {"number": index + 1}
    if not filename or not filename.strip() or "/" in filename or "\\" in filename or len(filename) > 255:
        raise AttachmentError(
            _("%(where)s: a plain file name of at most 255 characters is required.") % {"where": where},
            code="invalid_filename",
        )
    # The name goes into Content-Disposition (and an ESP's payload): a control character could
    # end that header, a bidirectional override could make `invoice\u202efdp.exe` read `invoiceexe.pdf`.
    problem = header_problem(filename)
    if problem:
        raise AttachmentError(
            _("%(where)s: the file name %(problem)s, which file names may not hold.")
            % {"where": where, "problem": problem},
            code="invalid_filename",
        )
    if not isinstance(content, (bytes, bytearray)):
        raise AttachmentError(_("%(where)s: the content must be bytes.") % {"where": where})
    allowed_set = {_ALIASES.get(a.strip().lower(), a.strip().lower()) for a in allowed}
    extension = _extension_of(content_type or "")
    if extension is None or extension not in allowed_set:
        raise AttachmentError(
            _("%(where)s: type %(type)s is not allowed; allowed types are %(allowed)s (EMAIL_ALLOWED_ATTACHMENT_TYPES).")
            % {"where": where, "type": repr(content_type), "allowed": ", ".join(sorted(allowed_set))},
            code="attachment_type_not_allowed",
        )
    suffix = PurePath(filename).suffix.lower().lstrip(".")
    if _ALIASES.get(suffix, suffix) != extension:
        raise AttachmentError(
            _("%(where)s: the file name must end in .%(extension)s for type %(type)s.")
            % {"where": where, "extension": extension, "type": repr(content_type)},
            code="invalid_filename",
        )
    if len(content) == 0:
        raise AttachmentError(_("%(where)s: the file is empty.") % {"where": where}, code="attachment_empty")
    if len(content) > max_bytes:
        raise AttachmentTooLarge(
            _("%(where)s: %(size)s bytes is larger than the %(limit)s bytes allowed (EMAIL_MAX_ATTACHMENT_SIZE_MB).")
            % {"where": where, "size": number(len(content)), "limit": number(max_bytes)}
        )
    if extension == "json":
        _check_json_depth(bytes(content), where=where)
    if not _content_matches(extension, bytes(content)):
        raise AttachmentError(
            _("%(where)s: the content is not a valid %(kind)s file, as its type says.")
            % {"where": where, "kind": extension.upper()},
            code="invalid_attachment_content",
        )
    return Attachment(filename=filename.strip(), content_type=TYPES[extension][0], content=bytes(content))
