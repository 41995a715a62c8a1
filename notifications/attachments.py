"""Attachment checks: allowed type, size, and bytes that really are of the declared type.

The declared type may be a MIME type (`application/pdf`) or an extension (`pdf`); the
filename's extension must agree with it, and the content is sniffed (binary formats by
their signature with `filetype`, JSON by parsing, CSV as text) so that an executable
named `invoice.pdf` is refused.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import PurePath

import filetype
from django.conf import settings

from notifications.exceptions import AttachmentError, AttachmentTooLarge
from notifications.headers import header_problem
from notifications.jsoninput import nesting_depth

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

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


def _extension_of(declared: str) -> str | None:
    declared = declared.strip().lower().split(";")[0]
    if "/" not in declared:
        return _ALIASES.get(declared, declared) if _ALIASES.get(declared, declared) in TYPES else None
    for extension, (_, spellings) in TYPES.items():
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
        raise AttachmentError(f"{where}: the JSON is nested deeper than {max_depth} levels (API_MAX_JSON_DEPTH).")


def check_attachment(
    *, filename: str, content_type: str, content: bytes, allowed: list[str], max_bytes: int, index: int = 0
) -> Attachment:
    """Return the attachment if it may be sent; raise `AttachmentError` saying why not."""
    where = f"Attachment {index + 1} ({filename!r})" if filename else f"Attachment {index + 1}"
    if not filename or not filename.strip() or "/" in filename or "\\" in filename or len(filename) > 255:
        raise AttachmentError(f"{where}: a plain file name of at most 255 characters is required.")
    # The name goes into Content-Disposition (and an ESP's payload): a control character could
    # end that header, a bidirectional override could make `invoice\u202efdp.exe` read `invoiceexe.pdf`.
    problem = header_problem(filename)
    if problem:
        raise AttachmentError(f"{where}: the file name {problem}, which file names may not hold.")
    if not isinstance(content, (bytes, bytearray)):
        raise AttachmentError(f"{where}: the content must be bytes.")
    allowed_set = {_ALIASES.get(a.strip().lower(), a.strip().lower()) for a in allowed}
    extension = _extension_of(content_type or "")
    if extension is None or extension not in allowed_set:
        raise AttachmentError(
            f"{where}: type {content_type!r} is not allowed; allowed types are "
            f"{', '.join(sorted(allowed_set))} (EMAIL_ALLOWED_ATTACHMENT_TYPES)."
        )
    suffix = PurePath(filename).suffix.lower().lstrip(".")
    if _ALIASES.get(suffix, suffix) != extension:
        raise AttachmentError(f"{where}: the file name must end in .{extension} for type {content_type!r}.")
    if len(content) == 0:
        raise AttachmentError(f"{where}: the file is empty.")
    if len(content) > max_bytes:
        raise AttachmentTooLarge(
            f"{where}: {len(content):,} bytes is larger than the {max_bytes:,} bytes allowed "
            "(EMAIL_MAX_ATTACHMENT_SIZE_MB)."
        )
    if extension == "json":
        _check_json_depth(bytes(content), where=where)
    if not _content_matches(extension, bytes(content)):
        raise AttachmentError(f"{where}: the content is not a valid {extension.upper()} file, as its type says.")
    return Attachment(filename=filename.strip(), content_type=TYPES[extension][0], content=bytes(content))
