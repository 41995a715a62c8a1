"""A plain message without a template: `send_simple_mail()` (001), audited like any other."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from django.conf import settings
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _

from notifications import jsoninput
from notifications.exceptions import TemplateError
from notifications.channels.email.headers import subject_problem
from notifications.models import Message, Lane
from notifications.channels.email.addresses import parse_addresses
from notifications.authoring.rendering import RenderedEmail

from notifications.core.outbox import scheduling
from notifications.channels.email.drafts import Draft
from notifications.channels.email.send_checks import check_columns, check_recipient_count, check_simulator_addresses
from notifications.channels.email.writer import write_and_queue


def send_simple_mail(
    to: str | Sequence[str],
    subject: str,
    text: str,
    *,
    links: Iterable[tuple[str, str] | str] = (),
    source_endpoint: str = "internal",
    sent_by=None,
    send_at: datetime | str | None = None,
) -> list[Message]:
    """Send a plain message with an optional list of links, without a template (001).

    Links are `(label, url)` pairs or bare URLs. The HTML part is built from the text with
    everything escaped; the message is audited exactly like a templated one.
    """
    send_at = scheduling.parse_send_at(send_at)
    recipients = parse_addresses(to, field="to", allow_empty=False)
    check_recipient_count(recipients)
    check_simulator_addresses({"to": recipients}, is_test=False)
    for address in recipients:
        check_columns(field="to", address=address)
    check_columns(source_endpoint=source_endpoint)
    if not isinstance(subject, str) or not subject.strip():
        raise TemplateError(_("A subject is required."), field="subject", code="required")
    problem = subject_problem(subject)
    if problem:
        raise TemplateError(
            _("The subject must be one line of text: %(problem)s.") % {"problem": problem},
            field="subject", code="header_injection",
        )
    if not isinstance(text, str) or not text.strip():
        raise TemplateError(_("A text is required."), field="text", code="required")
    links = list(links)
    jsoninput.check_value(text, field="text", max_depth=1)
    jsoninput.check_value(links, field="links", max_depth=2)
    pairs = [(link, link) if isinstance(link, str) else tuple(link) for link in links]
    for _label, url in pairs:
        if not str(url).startswith(("https://", "http://", "mailto:")):
            raise TemplateError(
                _("Link %(url)s must be an http(s) or mailto URL.") % {"url": repr(url)}, field="links", code="invalid_link"
            )
    paragraphs = format_html_join("", "<p>{}</p>", ((p,) for p in text.strip().split("\n\n")))
    link_list = format_html_join("", '<li><a href="{}">{}</a></li>', ((url, label) for label, url in pairs))
    html = format_html("{}{}", paragraphs, format_html("<ul>{}</ul>", link_list) if pairs else "")
    text_part = text.strip() + ("\n\n" + "\n".join(f"{label}: {url}" for label, url in pairs) if pairs else "")
    rendered = RenderedEmail(subject=subject.strip(), html=str(html), text=text_part + "\n", preheader="")
    draft = Draft(
        recipients=recipients,
        rendered=rendered,
        fields={
            "lane": Lane.DEFAULT,
            "max_attempts": settings.OUTBOX_RETRY_MAX_ATTEMPTS,
            "source_endpoint": source_endpoint,
            "sent_by": sent_by,
            "language": settings.LANGUAGE_CODE,
        },
    )
    return write_and_queue([draft], attachments=[], send_at=send_at)[0]
