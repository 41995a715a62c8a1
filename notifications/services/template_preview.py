"""Preview of a template version or an editor's draft: render only, never send.

Nothing here opens a connection to a mail server or writes a row: a preview is the
renderer's output shown to the editor. Errors come back as messages naming the part and
line (syntax, an internal reached, a missing variable), as the editor can act on them.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from notifications.exceptions import NotificationError
from notifications.rendering import VersionSource, render, used_variables


@dataclass(frozen=True)
class Preview:
    subject: str = ""
    preheader: str = ""
    html: str = ""
    text: str = ""
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"subject": self.subject, "preheader": self.preheader, "html": self.html, "text": self.text,
                "errors": list(self.errors)}


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
        return Preview(errors=[exc.message])
    return Preview(subject=rendered.subject, preheader=rendered.preheader, html=rendered.html, text=rendered.text)
