"""Which characters a value bound for a mail header, or an SMTP command, may hold.

Django refuses only CR and LF in a header, but Python's email generator ends a line at
every character `str.splitlines()` splits on (VT, FF, FS, GS, RS, NEL, U+2028, U+2029),
smtplib writes addresses into `RCPT TO` as they are, and an ESP builds its own MIME from
our values. So every value that reaches a header is checked here, once, before it is
stored: a control character can end a header or a command, and a bidirectional control
can make a name read as something else (`invoice`, U+202E, `fdp.exe` shows as `invoiceexe.pdf`).

Subjects may hold a TAB (it is whitespace in a header) and bidirectional controls (right-to-
left text needs them; a subject is encoded, and is only ever displayed). Addresses and
attachment file names may hold neither.
"""
from __future__ import annotations

import re

from django.utils.translation import gettext as _

#: Unicode's bidirectional formatting controls: embeddings, overrides, isolates and marks.
BIDI_CONTROLS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
#: Control characters (Unicode category Cc: C0, DEL, C1 with NEL) and the line and paragraph separators.
_CONTROLS = "\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029"
_TAB = "\t"

_FORBIDDEN = {
    (allow_tab, allow_bidi): re.compile(
        "[" + _CONTROLS + ("" if allow_tab else _TAB) + ("" if allow_bidi else BIDI_CONTROLS) + "]"
    )
    for allow_tab in (False, True)
    for allow_bidi in (False, True)
}


def forbidden_character(value: str, *, allow_tab: bool = False, allow_bidi: bool = False) -> str | None:
    """The first character of `value` that may not go into a header, or None."""
    found = _FORBIDDEN[allow_tab, allow_bidi].search(value)
    return found.group() if found else None


def describe(character: str) -> str:
    """`U+000B (a control character)`: how an error names a character it refuses."""
    kind = _("a bidirectional control character") if character in BIDI_CONTROLS else _("a control character")
    return f"U+{ord(character):04X} ({kind})"


def header_problem(value: str, *, allow_tab: bool = False, allow_bidi: bool = False) -> str | None:
    """Why `value` may not go into a header (`"it holds U+000B (a control character)"`), or None."""
    character = forbidden_character(value, allow_tab=allow_tab, allow_bidi=allow_bidi)
    return None if character is None else _("it holds %(character)s") % {"character": describe(character)}


def subject_problem(subject: str) -> str | None:
    """Why a rendered subject may not be sent, or None: it must stay one line of text."""
    return header_problem(subject, allow_tab=True, allow_bidi=True)


__all__ = ["BIDI_CONTROLS", "describe", "forbidden_character", "header_problem", "subject_problem"]
