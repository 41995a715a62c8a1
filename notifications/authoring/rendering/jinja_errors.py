"""Jinja's own error texts, said again in the editor's language.

Jinja writes its errors in English (`'customer_name' is undefined`, `unexpected '}'`), and a
French editor saw them inside French sentences. The errors a template editor meets are few
and their texts stable, so each is recognised here by its pattern and turned into one of our
translated sentences naming what it names (the variable, the tag, the line). An error not
recognised gets a translated sentence of its kind without Jinja's text: a sentence in one
language, never English inside French.
"""
from __future__ import annotations

import re
from types import TracebackType

from django.utils.translation import gettext as _

#: The file name Jinja gives the frames of a template's code after rewriting its traceback.
_TEMPLATE_FRAME = "<template>"

_UNDEFINED = re.compile(r"^'(?P<name>[^']+)' is undefined$")
_NO_ATTRIBUTE = re.compile(r"^'(?P<owner>[^']+)' has no (?:attribute|element) '?(?P<name>[^']+?)'?$")
_UNSAFE_ATTRIBUTE = re.compile(r"^access to attribute '(?P<name>[^']+)' of '(?P<owner>[^']+)' object is unsafe\.$")
_NOT_CALLABLE = re.compile(r"^'?(?P<name>[^']+?)'? is not safely callable$")
_UNKNOWN_TAG = re.compile(r"^Encountered unknown tag '(?P<tag>[^']+)'\.")
_LOOKING_FOR = re.compile(r"Jinja was looking for the following tags: (?P<tags>.+?)\. "
                          r"The innermost block that needs to be closed is '(?P<block>[^']+)'\.")
_END_OF_TEMPLATE = re.compile(r"^Unexpected end of template\.")
_UNEXPECTED = re.compile(r"^unexpected (?:char )?['\"](?P<token>.+?)['\"]")
_EXPECTED = re.compile(r"^[Ee]xpected (?:token '(?P<wanted>[^']+)'|an expression), got '(?P<got>[^']+)'")
_NO_FILTER = re.compile(r"^No (?P<kind>filter|test) named '(?P<name>[^']+)'")
_TAG_NAME = re.compile(r"'([^']+)'")


def template_line(traceback: TracebackType | None) -> int | None:
    """The template line an error was raised on: the last frame of template code in the
    traceback (Jinja rewrites those frames to the template's own line numbers)."""
    line = None
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename == _TEMPLATE_FRAME:
            line = traceback.tb_lineno
        traceback = traceback.tb_next
    return line


def undefined(message: str) -> str:
    """An `UndefinedError`'s text, translated: the name that is not defined, and on what."""
    match = _UNDEFINED.match(message)
    if match:
        return _("%(name)s is not defined: declare it as a variable of the version, or correct its spelling.") % {
            "name": repr(match["name"])}
    match = _NO_ATTRIBUTE.match(message)
    if match:
        return _("The value has no field %(name)s.") % {"name": repr(match["name"])}
    return _("The template reads a value that is not defined.")


def security(message: str) -> str:
    """A `SecurityError`'s text, translated: what the template reached for."""
    match = _UNSAFE_ATTRIBUTE.match(message)
    if match:
        return _("the template may not use %(name)s: templates only read values, never change them or reach "
                 "internals.") % {"name": repr(match["name"])}
    match = _NOT_CALLABLE.match(message)
    if match:
        return _("the template may not call %(name)s.") % {"name": repr(match["name"])}
    return _("the template reached for something outside its variables.")


def syntax(message: str) -> str:
    """A `TemplateSyntaxError`'s text, translated: the tag, block or token at fault."""
    looking = _LOOKING_FOR.search(message)
    tag = _UNKNOWN_TAG.match(message)
    if tag and looking:
        return _("the tag %(tag)s does not close the block %(block)s (expected: %(expected)s).") % {
            "tag": repr(tag["tag"]), "block": repr(looking["block"]), "expected": _tags(looking["tags"])}
    if tag:
        return _("unknown tag %(tag)s (or a closing tag without its opening one).") % {"tag": repr(tag["tag"])}
    if _END_OF_TEMPLATE.match(message):
        if looking:
            return _("the block %(block)s is never closed (expected: %(expected)s).") % {
                "block": repr(looking["block"]), "expected": _tags(looking["tags"])}
        return _("the template ends inside an unfinished block or expression.")
    match = _NO_FILTER.match(message)
    if match:
        if match["kind"] == "filter":
            return _("there is no filter named %(name)s.") % {"name": repr(match["name"])}
        return _("there is no test named %(name)s.") % {"name": repr(match["name"])}
    match = _EXPECTED.match(message)
    if match:
        return _("an expression is incomplete or has an unexpected %(token)s.") % {"token": repr(match["got"])}
    match = _UNEXPECTED.match(message)
    if match:
        return _("unexpected %(token)s: a tag, an expression or a string is not closed as it should be.") % {
            "token": repr(match["token"])}
    return _("the syntax is not valid here.")


def _tags(listed: str) -> str:
    """Jinja's `'elif' or 'else' or 'endif'` as the names alone, joined by commas."""
    return ", ".join(_TAG_NAME.findall(listed))
