"""Preview of a template version or an editor's draft: render only, never send.

Nothing here opens a connection to a mail server or writes a row: a preview is the
renderer's output shown to the editor. Errors come back as messages naming the part and
line (syntax, an internal reached, a missing variable), as the editor can act on them.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from django.utils.translation import gettext_lazy

from notifications.exceptions import NotificationError
from notifications.authoring.rendering import VersionSource, render, used_variables

from notifications.authoring.versions import PARTS


#: What an editor reads when a template does too much work to render: one sentence. The
#: renderer's own message (which names the setting, for the administrator) is the detail.
BUDGET_SENTENCE = gettext_lazy(
    "This template does too much work to render (loops or macros that repeat too often): simplify it."
)


@dataclass(frozen=True)
class Problem:
    """One error, as the editor shows it: a sentence, the detail folded below it (or ""), and
    the part and line it is on when known (the editor highlights that line)."""

    message: str
    detail: str = ""
    part: str | None = None
    line: int | None = None

    @classmethod
    def of(cls, exc: NotificationError, *, message: str | None = None) -> Problem:
        part = exc.field if exc.field in PARTS else None
        if exc.code == "render_limit_exceeded":
            return cls(message=str(BUDGET_SENTENCE), detail=message or exc.message, part=part)
        return cls(message=message or exc.message, part=part, line=exc.line if part else None)

    def as_dict(self) -> dict:
        return {"message": self.message, "detail": self.detail, "part": self.part, "line": self.line}


@dataclass(frozen=True)
class Preview:
    subject: str = ""
    preheader: str = ""
    html: str = ""
    text: str = ""
    errors: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"subject": self.subject, "preheader": self.preheader, "html": self.html, "text": self.text,
                "errors": list(self.errors), "problems": [problem.as_dict() for problem in self.problems]}


def preview(
    *, source: VersionSource, variables: Mapping[str, object], required: list[str],
    optional: Mapping[str, object], layout_name: str,
) -> Preview:
    """Render `source` with `variables` under the sandbox and its budget, as a send would."""
    sources = {"subject": source.subject, "preheader": source.preheader,
               "html_content": source.html_content, "text_content": source.text_content}
    try:
        used_variables(sources)  # syntax errors and internals, named by part and line
        rendered = render(source, variables=dict(variables), required=list(required), optional=dict(optional),
                          layout_name=layout_name)
    except NotificationError as exc:
        problem = Problem.of(exc)
        return Preview(errors=[problem.message], problems=[problem])
    return Preview(subject=rendered.subject, preheader=rendered.preheader, html=rendered.html, text=rendered.text)
