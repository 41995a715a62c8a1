"""Finding a Python exception's text in an answer's body (issue 16: "4xx bodies repeat Python
exception text": `JSONDecodeError…`, `UnicodeDecodeError…`, `'int' object has no attribute
'get'`, `urlopen error`).

`watch_answers()` records every answer Django's request handler gives while it is active,
whatever called it: the test client, the WSGI application schemathesis drives, a live
server. `leaks()` names what in a 4xx body reads as an exception's own text rather than
one of our messages: a name of an exception class loaded in this process (`ValueError`,
`JSONDecodeError`, `NoCredentialsError`, `NestingTooDeep`, ...), or a phrase Python's own
errors are made of.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.core.handlers.base import BaseHandler

#: The wording of Python's, json's, codecs' and urllib's errors (which name no class).
PHRASES = (
    "Traceback (most recent call last)",
    "object has no attribute",
    "object is not subscriptable",
    "object is not iterable",
    "urlopen error",
    "codec can't decode",
    "codec can't encode",
    "Expecting value: line",
    "Expecting property name enclosed in double quotes",
    "Extra data: line",
    "Unterminated string starting at",
    "Invalid control character at",
    "maximum recursion depth exceeded",
    "unhashable type",
    "NoneType",
    "Errno ",
)
def _subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


#: A name of two words or more run together (`ValueError`, `NoCredentialsError`): one word
#: alone (`Empty`, `Retry`, `Timeout`, `error`) may well start a sentence of ours.
CAMEL_CASE = re.compile(r"[A-Z][a-z0-9]+(?:[A-Z][A-Za-z0-9]*)+")


def exception_names() -> set[str]:
    """Every exception class name loaded in this process that cannot be a plain word."""
    return {cls.__name__ for cls in _subclasses(BaseException) if CAMEL_CASE.fullmatch(cls.__name__)}


def leaks(text: str, *, names: set[str] | None = None) -> list[str]:
    """What in `text` is a Python exception's own text (empty: none)."""
    names = exception_names() if names is None else names
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))
    return sorted((words & names) | {phrase for phrase in PHRASES if phrase in text})


@dataclass
class Answer:
    method: str
    path: str
    status: int
    body: str


@contextmanager
def watch_answers() -> Iterator[list[Answer]]:
    """Record every answer Django's request handler gives meanwhile (see the module)."""
    answers: list[Answer] = []
    original = BaseHandler.get_response

    def get_response(self, request):
        response = original(self, request)
        streaming = getattr(response, "streaming", False)
        body = "" if streaming else response.content.decode("utf-8", "replace")
        answers.append(Answer(request.method, request.get_full_path(), response.status_code, body))
        return response

    BaseHandler.get_response = get_response
    try:
        yield answers
    finally:
        BaseHandler.get_response = original


def leaking_answers(answers: list[Answer]) -> list[tuple[str, str, int, list[str]]]:
    """The 4xx answers whose bodies hold an exception's own text: (method, path, status, what)."""
    names = exception_names()
    found = []
    for answer in answers:
        if 400 <= answer.status < 500:
            what = leaks(answer.body, names=names)
            if what:
                found.append((answer.method, answer.path, answer.status, what))
    return found
