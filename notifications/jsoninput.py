"""What every JSON value the service takes in must be: nested at most `API_MAX_JSON_DEPTH`
deep, and free of the NUL character (U+0000), which PostgreSQL stores in neither `text` nor
`jsonb`.

Python's `json` module recurses once per level: a body or an attachment nested a few
thousand deep exhausts the interpreter's stack. `deepest_path()` therefore measures raw JSON
text without parsing it (and without recursion), so it can be asked before `json.loads()`;
`check_value()` walks a value already in memory (a request's parsed body, the variables a
Python caller passes) iteratively. Both name where the fault is, as a path such as
`items[3].variables.name`, so the caller can be told what to fix.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from itertools import accumulate, islice

from django.utils.translation import gettext as _

from notifications.exceptions import NestingTooDeep, UnstorableText

NUL = "\x00"

# A JSON string literal (escapes included), then the punctuation that shapes a document.
_STRING = r'"[^"\\]*(?:\\.[^"\\]*)*"'
_STRINGS = re.compile(_STRING, re.DOTALL)
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")
_TOKENS = re.compile(_STRING + r"|[\[\]{},:]", re.DOTALL)
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
_WALK_TOKENS = 1_000_000

PathPart = str | int


def nesting_depth(text: str) -> int:
    """How many containers deep the JSON `text` goes (`{}` is 1, `{"a": [1]}` is 2).

    Brackets inside strings do not count. Linear in the text, at C speed: strings and
    everything but brackets are dropped by regular expressions before the count.
    """
    brackets = _NOT_BRACKETS.sub("", _STRINGS.sub("", text))
    if not brackets:
        return 0
    return max(0, max(accumulate(map(_DEPTH_STEP.__getitem__, brackets))))


def deepest_path(text: str, *, max_depth: int) -> list[PathPart] | None:
    """The path to the first container nested past `max_depth` in the JSON `text`, or None.

    The path's parts are object keys and array indexes, outermost first; `[]` when it
    cannot be told more precisely (the document itself, a path past the first million
    tokens). Malformed text is measured as far as it goes: refusing it is the parser's job.
    """
    if nesting_depth(text) <= max_depth:
        return None
    # Rare and refused anyway: walk the tokens to say where, stopping at the first excess,
    # or after `_WALK_TOKENS` (a Python loop: a huge body is refused without the path).
    frames: list[list] = []  # [opening bracket, current key or index]
    last_string = ""
    for match in islice(_TOKENS.finditer(text), _WALK_TOKENS):
        token = match.group()
        if token[0] == '"':
            last_string = token
        elif token in ("[", "{"):
            if len(frames) == max_depth:
                return [_decoded(part) for _, part in frames]
            frames.append([token, 0 if token == "[" else ""])
        elif token in ("]", "}"):
            if frames:
                frames.pop()
        elif token == "," and frames and frames[-1][0] == "[":
            frames[-1][1] += 1
        elif token == ":" and frames and frames[-1][0] == "{":
            frames[-1][1] = last_string
    return []  # past the walk's budget, or unbalanced text: no better place to name


def _decoded(part: PathPart) -> PathPart:
    if isinstance(part, int):
        return part
    try:
        return json.loads(part) if part else ""
    except ValueError:
        return part.strip('"')


def check_value(value: object, *, field: str, max_depth: int) -> None:
    """Refuse `value` (named `field`) if it nests past `max_depth` or holds a NUL anywhere.

    Mappings, lists and tuples are containers (the value itself is level 1 when it is one);
    keys and string values are searched for NUL. Other objects are left as they are.
    Iterative, so neither a deep nor a self-containing value can exhaust the stack.
    Raises `NestingTooDeep` or `UnstorableText` whose message gives the path.
    """
    pending: list[tuple[object, list[PathPart], int]] = [(value, [], 0)]
    while pending:
        item, path, depth = pending.pop()
        if isinstance(item, str):
            if NUL in item:
                raise UnstorableText(_nul_message(format_path(field, path)), field=field)
            continue
        if isinstance(item, Mapping):
            children = list(item.items())
        elif isinstance(item, (list, tuple)):
            children = list(enumerate(item))
        else:
            continue
        if depth + 1 > max_depth:
            raise too_deep(field=field, path=path, max_depth=max_depth)
        for key, child in reversed(children):
            if isinstance(key, str) and NUL in key:
                raise UnstorableText(
                    _("A name in %(path)s contains a NUL character (U+0000), which cannot be stored; remove it.")
                    % {"path": format_path(field, path)},
                    field=field,
                )
            pending.append((child, [*path, key], depth + 1))


def _nul_message(path: str) -> str:
    return _("%(path)s contains a NUL character (U+0000), which cannot be stored; remove it.") % {"path": path}


def too_deep(*, field: str, path: list[PathPart], max_depth: int) -> NestingTooDeep:
    return NestingTooDeep(
        _("%(path)s is nested deeper than %(max_depth)s levels (API_MAX_JSON_DEPTH).")
        % {"path": format_path(field, path), "max_depth": max_depth},
        field=field,
    )


def format_path(field: str, path: list[PathPart]) -> str:
    """`variables` + ["a", 0, "b"] → `variables.a[0].b` (long keys cut, NULs shown as \\0)."""
    text = field
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            key = str(part).replace(NUL, "\\0")
            text += "." + (key if len(key) <= 40 else key[:37] + "...")
    return text
