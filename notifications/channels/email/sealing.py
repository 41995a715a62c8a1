"""Sensitive variables (003: "links generated to reset passwords are redacted").

The audit row keeps a rendering in which the template's sensitive variables are masked; the
real rendering travels sealed (encrypted with NOTIFICATIONS_ENCRYPTION_KEY) on the same row
until the message is sent or has failed, and is then deleted. A message whose sealed
rendering is gone cannot be sent again: the secret it carried no longer exists anywhere.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from django.utils.translation import gettext as _

from notifications import crypto
from notifications.exceptions import SealedContentGone
from notifications.models import Message
from notifications.authoring.rendering import RenderedEmail

MASK = "••••••"
WITHHELD = "[withheld: this message contains sensitive values]"


def sensitive_names(sensitive: Iterable[str], variables: Mapping[str, object]) -> set[str]:
    """The sensitive variables this call actually gives a value for."""
    return {name for name in sensitive if variables.get(name) not in (None, "")}


def masked(variables: Mapping[str, object], names: Iterable[str]) -> dict[str, object]:
    hidden = set(names)
    return {name: (MASK if name in hidden else value) for name, value in variables.items()}


def withheld(subject_hint: str = "") -> RenderedEmail:
    """What the audit shows when a masked value cannot even be rendered (e.g. `|int` of it)."""
    return RenderedEmail(subject=subject_hint or WITHHELD, html=f"<p>{WITHHELD}</p>", text=WITHHELD + "\n", preheader="")


def seal(rendered: RenderedEmail) -> str:
    return crypto.encrypt(json.dumps({"subject": rendered.subject, "html": rendered.html, "text": rendered.text}))


def content_gone(message: Message) -> bool:
    """A masked message whose unmasked rendering was deleted (once sent, failed, expired or
    cancelled): what it really said exists nowhere any more, so it cannot be sent again."""
    return message.is_masked and not message.sealed_content


def content_gone_reason() -> str:
    return _(
        "This message has sensitive values and its unmasked content was deleted once it was sent or "
        "failed, so it cannot be sent again; send a new message instead."
    )


def content_to_send(message: Message) -> tuple[str, str, str]:
    """(subject, html, text) to deliver: the sealed rendering for masked messages."""
    if not message.is_masked:
        return message.subject, message.html_content, message.text_content
    if content_gone(message):
        raise SealedContentGone(content_gone_reason())
    content = json.loads(crypto.decrypt(message.sealed_content))
    return content["subject"], content["html"], content["text"]
