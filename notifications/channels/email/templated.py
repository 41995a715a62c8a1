"""Sending a template: `send_mail_template()` (the API's and applications' call) and `send_template_test()`."""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from django.conf import settings
from django.utils.translation import gettext as _

from notifications import jsoninput
from notifications.exceptions import TemplateError
from notifications.models import Message, EmailTemplate
from notifications.channels.email.addresses import parse_addresses
from notifications.authoring.rendering import VersionSource

from notifications.core.outbox import scheduling
from notifications.channels.email.drafts import Draft, template_draft
from notifications.channels.email.send_checks import AttachmentInput, check_attachments, check_columns, check_simulator_addresses, checked_copies, extra_recipients
from notifications.authoring.versions import get_template, select_version
from notifications.channels.email.writer import write_and_queue


def send_mail_template(
    template_key: str,
    to: str | Sequence[str],
    variables: Mapping[str, object] | None = None,
    *,
    language: str | None = None,
    attachments: Iterable[AttachmentInput] = (),
    cc: str | Sequence[str] = (),
    bcc: str | Sequence[str] = (),
    reply_to: str | None = None,
    source_endpoint: str = "internal",
    sent_by=None,
    idempotency_key: str = "",
    is_test: bool = False,
    include_extra_recipients: bool = True,
    send_at: datetime | str | None = None,
) -> list[Message]:
    """Render the template for each recipient and queue one audited message per address.

    `to` is an address, a comma-separated string or a list; the template's
    `extra_recipients` are added, each with a copy of its own. `cc` and `bcc` ride on the
    one message to a single `to` address (refused with several); `to`, `cc` and `bcc`
    count together against `SEND_MAX_RECIPIENTS_PER_REQUEST`. `is_test` (a test API
    key) renders and audits but never delivers: see `core.outbox.simulator`. A test send
    leaves out `extra_recipients` (`include_extra_recipients=False`) so trying a template
    never alerts the NOC. `send_at` (an aware datetime, or ISO 8601 with an offset)
    schedules the messages: they are `scheduled` until then and never sent before; a time
    past is now.
    Returns the messages (status `queued` or `scheduled`, or `suppressed` when `OUTBOX_ACTIVE`
    is off). Raises a `NotificationError` naming the field at fault.
    """
    if variables is None:
        variables = {}
    if not isinstance(variables, Mapping):
        raise TemplateError(_("Variables must be an object of name → value."), field="variables", code="invalid_variables")
    send_at = scheduling.parse_send_at(send_at)
    check_columns(template_key=template_key, source_endpoint=source_endpoint, idempotency_key=idempotency_key)
    jsoninput.check_value(variables, field="variables", max_depth=settings.API_MAX_JSON_DEPTH)
    template = get_template(template_key)
    recipients = parse_addresses(to, field="to", allow_empty=False)
    copies = checked_copies(to=recipients, cc=cc, bcc=bcc, reply_to=reply_to)
    check_simulator_addresses({"to": recipients, "cc": copies["cc"], "bcc": copies["bcc"]}, is_test=is_test)
    checked = check_attachments(attachments, template=template)

    version = select_version(template, language=language)
    draft = template_draft(
        template=template,
        version=version,
        recipients=recipients,
        variables=variables,
        fields={
            "source_endpoint": source_endpoint,
            "sent_by": sent_by,
            "idempotency_key": idempotency_key,
            "is_test": is_test,
            **copies,
        },
    )
    drafts = [draft]
    if include_extra_recipients:
        already = [*recipients, *copies["cc"], *copies["bcc"]]
        extra = extra_recipients(template, besides=already)
        if extra:
            # The template's copies: the same rendering, without the caller's cc and bcc.
            drafts.append(Draft(recipients=extra, rendered=draft.rendered,
                                fields={**draft.fields, "cc": [], "bcc": []}, marketing=draft.marketing))
    written = write_and_queue(drafts, attachments=checked, send_at=send_at)
    return [message for messages in written for message in messages]


def send_template_test(
    *,
    template: EmailTemplate,
    to: str,
    variables: Mapping[str, object],
    version=None,
    draft: VersionSource | None = None,
    source_endpoint: str,
    sent_by=None,
) -> Message:
    """Send one version (any, active or not) or an unsaved draft of `template` to one test address.

    Like the API's test send: never to the template's `extra_recipients`, always delivered
    through the queue like any message. A draft's row records its rendered content and no
    version (`template_version` NULL). Whether `to` may receive tests is the caller's check.
    """
    if (version is None) == (draft is None):
        raise ValueError("send_template_test takes a version or a draft, not both nor neither")
    jsoninput.check_value(variables, field="variables", max_depth=settings.API_MAX_JSON_DEPTH)
    check_columns(template_key=template.key, source_endpoint=source_endpoint)
    recipients = parse_addresses(to, field="to", allow_empty=False)
    copies = checked_copies(to=recipients, cc=(), bcc=(), reply_to=None)
    check_simulator_addresses({"to": recipients}, is_test=False)
    fields = {"source_endpoint": source_endpoint, "sent_by": sent_by, **copies}
    prepared = template_draft(template=template, version=version, recipients=recipients, variables=variables,
                               fields=fields, source=draft)
    return write_and_queue([prepared], attachments=[], send_at=None)[0][0]
