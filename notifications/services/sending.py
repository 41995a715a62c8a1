"""The public sending API: `send_mail_template()` and `send_simple_mail()`.

Both validate everything first, render once, then write the audit rows and their
attachments in one transaction and queue delivery only once that transaction commits.
A refused request therefore leaves no row, and an accepted one is never lost: the row
exists before any worker is asked to send it.
"""
from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import formataddr, formatdate

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _

from notifications import jsoninput
from notifications.attachments import Attachment, check_attachment
from notifications.exceptions import (
    AttachmentError,
    BatchTooLarge,
    InvalidRecipient,
    NotificationError,
    TemplateError,
    TooManyRecipients,
    UnstorableText,
    ValueTooLong,
)
from notifications.headers import subject_problem
from notifications.models import AttachmentBlob, EmailAttachment, EmailMessage, EmailTemplate, Kind, Lane, Status
from notifications.recipients import parse_addresses
from notifications.rendering import RenderedEmail, VersionSource, render

from notifications.backends import connections

from . import delivery, lifecycle, mime, scheduling, sealing, suppression, wakeups
from .templates import get_template, select_version

AttachmentInput = Attachment | Mapping[str, object] | tuple


def default_from_email() -> str:
    return formataddr((settings.SMTP_FROM_NAME, settings.SMTP_FROM_EMAIL))


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
) -> list[EmailMessage]:
    """Render the template for each recipient and queue one audited message per address.

    `to` is an address, a comma-separated string or a list; the template's
    `extra_recipients` are added, each with a copy of its own. `cc` and `bcc` ride on the
    one message to a single `to` address (refused with several); `to`, `cc` and `bcc`
    count together against `EMAIL_MAX_RECIPIENTS_PER_REQUEST`. `is_test` (a test API
    key) renders and audits but never delivers: see `services.simulator`. A test send
    leaves out `extra_recipients` (`include_extra_recipients=False`) so trying a template
    never alerts the NOC. `send_at` (an aware datetime, or ISO 8601 with an offset)
    schedules the messages: they are `scheduled` until then and never sent before; a time
    past is now.
    Returns the messages (status `queued` or `scheduled`, or `suppressed` when `SMTP_ACTIVE`
    is off). Raises a `NotificationError` naming the field at fault.
    """
    if variables is None:
        variables = {}
    if not isinstance(variables, Mapping):
        raise TemplateError(_("Variables must be an object of name → value."), field="variables", code="invalid_variables")
    send_at = scheduling.parse_send_at(send_at)
    _check_columns(template_key=template_key, source_endpoint=source_endpoint, idempotency_key=idempotency_key)
    jsoninput.check_value(variables, field="variables", max_depth=settings.API_MAX_JSON_DEPTH)
    template = get_template(template_key)
    recipients = parse_addresses(to, field="to", allow_empty=False)
    copies = _copies(to=recipients, cc=cc, bcc=bcc, reply_to=reply_to)
    checked = _check_attachments(attachments, template=template)

    version = select_version(template, language=language)
    draft = _template_draft(
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
        extra = _extra_recipients(template, besides=already)
        if extra:
            # The template's copies: the same rendering, without the caller's cc and bcc.
            drafts.append(Draft(recipients=extra, rendered=draft.rendered,
                                fields={**draft.fields, "cc": [], "bcc": []}, marketing=draft.marketing))
    written = _write_and_queue(drafts, attachments=checked, send_at=send_at)
    return [message for messages in written for message in messages]


@dataclass(frozen=True)
class BatchItemResult:
    """One item of a mail merge: its messages, or why it was refused."""

    index: int
    to: list[str]
    messages: list[EmailMessage] = field(default_factory=list)
    errors: dict | None = None
    codes: dict | None = None


def send_batch(
    template_key: str,
    items: Sequence[Mapping[str, object]],
    *,
    language: str | None = None,
    attachments: Iterable[AttachmentInput] = (),
    source_endpoint: str = "internal",
    sent_by=None,
    idempotency_key: str = "",
    is_test: bool = False,
    send_at: datetime | str | None = None,
) -> list[BatchItemResult]:
    """A mail merge: one template, each item `{to, variables}` rendered with its own values.

    The template and the attachments are checked once (and the attachments stored once);
    an item that cannot be sent (bad address, missing variable, ...) is reported with its
    errors and the others go ahead, all written in one transaction. When no item can be
    sent, `BatchRefused` reports them all and nothing is written.
    """
    if not isinstance(items, (list, tuple)) or not items:
        raise TemplateError(
            _("A non-empty list of {to, variables} items is required."), field="items", code="invalid_items"
        )
    if len(items) > settings.EMAIL_MAX_BATCH_ITEMS:
        raise BatchTooLarge(
            _("%(count)s items given; at most %(limit)s are allowed per batch (EMAIL_MAX_BATCH_ITEMS).")
            % {"count": len(items), "limit": settings.EMAIL_MAX_BATCH_ITEMS},
            setting="EMAIL_MAX_BATCH_ITEMS",
        )
    send_at = scheduling.parse_send_at(send_at)
    _check_columns(template_key=template_key, source_endpoint=source_endpoint, idempotency_key=idempotency_key)
    template = get_template(template_key)
    version = select_version(template, language=language)
    checked = _check_attachments(attachments, template=template)
    common = {"source_endpoint": source_endpoint, "sent_by": sent_by, "idempotency_key": idempotency_key,
              "is_test": is_test, **_copies(to=[], cc=(), bcc=(), reply_to=None)}
    results: list[BatchItemResult] = []
    accepted: list[tuple[int, list[str], Mapping[str, object]]] = []
    for index, item in enumerate(items):
        try:
            recipients, variables = _batch_item(item)
        except NotificationError as exc:
            results.append(_refused_item(index, item, exc))
            continue
        accepted.append((index, recipients, variables))
    # Counted before anything is rendered: a batch past the cap costs no more than its parsing.
    addresses = sum(len(recipients) for _, recipients, _ in accepted)
    if addresses > settings.EMAIL_MAX_BATCH_RECIPIENTS:
        raise BatchTooLarge(
            _("%(count)s addresses given in all; at most %(limit)s are allowed per batch (EMAIL_MAX_BATCH_RECIPIENTS).")
            % {"count": addresses, "limit": settings.EMAIL_MAX_BATCH_RECIPIENTS},
            setting="EMAIL_MAX_BATCH_RECIPIENTS",
        )
    drafts: list[tuple[int, Draft]] = []
    for index, recipients, variables in accepted:
        try:
            draft = _template_draft(template=template, version=version, variables=variables, fields=common,
                                    recipients=recipients + _extra_recipients(template, besides=recipients))
        except NotificationError as exc:
            results.append(_refused_item(index, items[index], exc))
            continue
        drafts.append((index, draft))
    if not drafts:
        raise BatchRefused(results)
    written = _write_and_queue([draft for _, draft in drafts], attachments=checked, send_at=send_at)
    for (index, draft), messages in zip(drafts, written, strict=True):
        results.append(BatchItemResult(index=index, to=draft.recipients, messages=messages))
    return sorted(results, key=lambda result: result.index)


def _refused_item(index: int, item: object, exc: NotificationError) -> BatchItemResult:
    to = item.get("to") if isinstance(item, Mapping) else None
    return BatchItemResult(index=index, to=[to] if isinstance(to, str) else [], errors=exc.as_dict(), codes=exc.codes())


class BatchRefused(NotificationError):
    """No item of a batch could be sent; `results` says why for each."""

    field = "items"
    code = "batch_refused"

    def __init__(self, results: list[BatchItemResult]) -> None:
        self.results = results
        super().__init__(_("No item of the batch can be sent."))

    def as_dict(self) -> dict:
        return {"items": [{"index": r.index, "errors": r.errors, "codes": r.codes} for r in self.results]}

    def codes(self) -> dict:
        return {"items": [{"index": r.index, "errors": r.codes} for r in self.results]}


_BATCH_ITEM_FIELDS = {"to", "variables"}


def _batch_item(item: object) -> tuple[list[str], Mapping[str, object]]:
    """An item's own addresses (the template's extra recipients are not counted) and variables."""
    if not isinstance(item, Mapping):
        raise TemplateError(_("Each item must be an object {to, variables}."), field="items", code="invalid_items")
    unknown = sorted(set(item) - _BATCH_ITEM_FIELDS)
    if unknown:
        raise TemplateError(
            _("Unknown fields: %(names)s.") % {"names": ", ".join(unknown)}, field=unknown[0], code="unknown_field"
        )
    recipients = parse_addresses(item.get("to"), field="to", allow_empty=False)
    _check_recipient_count(recipients)
    for address in recipients:
        _check_columns(field="to", recipient_email=address)
    variables = item.get("variables") or {}
    if not isinstance(variables, Mapping):
        raise TemplateError(_("Variables must be an object of name → value."), field="variables", code="invalid_variables")
    jsoninput.check_value(variables, field="variables", max_depth=settings.API_MAX_JSON_DEPTH)
    return recipients, variables


def _check_recipient_count(addresses: list[str]) -> None:
    limit = settings.EMAIL_MAX_RECIPIENTS_PER_REQUEST
    if len(addresses) > limit:
        raise TooManyRecipients(
            _(
                "%(count)s addresses given (to, cc and bcc together); at most %(limit)s are allowed per request "
                "(EMAIL_MAX_RECIPIENTS_PER_REQUEST)."
            ) % {"count": len(addresses), "limit": limit},
        )


def _extra_recipients(template: EmailTemplate, *, besides: Iterable[str]) -> list[str]:
    """The template's `extra_recipients` that are not already among `besides`: one copy each."""
    taken = {address.lower() for address in besides}
    extra = parse_addresses(list(template.extra_recipients), field="extra_recipients")
    return [address for address in extra if address.lower() not in taken]


def _check_columns(*, field: str | None = None, **values: object) -> None:
    """Refuse what an `EmailMessage` column cannot hold: a NUL, or more characters than it has.

    Each keyword is a column; the error names `field`, else the column itself.
    """
    for column, value in values.items():
        if not isinstance(value, str):
            continue
        name = field or column
        if jsoninput.NUL in value:
            raise UnstorableText(
                _("%(name)s contains a NUL character (U+0000), which cannot be stored.") % {"name": name}, field=name
            )
        limit = EmailMessage._meta.get_field(column).max_length
        if limit is not None and len(value) > limit:
            shown = value[:40] + "..." if len(value) > 40 else value
            raise ValueTooLong(
                _("%(name)s %(value)s is %(length)s characters long; at most %(limit)s fit.")
                % {"name": name, "value": repr(shown), "length": len(value), "limit": limit},
                field=name,
            )


@dataclass(frozen=True)
class Draft:
    """What one request sends: its recipients, their common rendering and the row's fields."""

    recipients: list[str]
    rendered: RenderedEmail
    fields: dict
    marketing: bool = False  # a marketing template's: an unsubscribed address is suppressed too


def _template_draft(*, template: EmailTemplate, version, recipients: list[str],
                    variables: Mapping[str, object], fields: dict, source: VersionSource | None = None) -> Draft:
    """Render once for these recipients; mask and seal the sensitive variables (sealing.py).

    `source` renders content that is no saved version (an editor's draft): `version` is then None.
    """
    source = source or VersionSource.of(version)
    options = {
        "required": template.required_variables,
        "optional": template.optional_variables,
        "layout_name": template.layout,
    }
    rendered = render(source, variables=variables, **options)
    for part in (rendered.subject, rendered.preheader, rendered.html, rendered.text):
        if jsoninput.NUL in part:
            raise TemplateError(
                _("The template's output contains a NUL character (U+0000), which cannot be stored."),
                field="template", code="unstorable_text",
            )
    hidden = sealing.sensitive_names(template.sensitive_variables, variables)
    sealed = ""
    if hidden:
        sealed = sealing.seal(rendered)
        try:
            rendered = render(source, variables=sealing.masked(variables, hidden), **options)
        except NotificationError:
            rendered = sealing.withheld()
    return Draft(
        recipients=recipients,
        rendered=rendered,
        fields={
            "template_key": template.key,
            "template_version": version,
            "language": source.language,
            "variables": sealing.masked(variables, template.sensitive_variables),
            "is_masked": bool(hidden),
            "sealed_content": sealed,
            "lane": template.lane,
            "max_attempts": template.max_attempts,
            **fields,
        },
        marketing=template.kind == Kind.MARKETING,
    )


def send_template_test(
    *,
    template: EmailTemplate,
    to: str,
    variables: Mapping[str, object],
    version=None,
    draft: VersionSource | None = None,
    source_endpoint: str,
    sent_by=None,
) -> EmailMessage:
    """Send one version (any, active or not) or an unsaved draft of `template` to one test address.

    Like the API's test send: never to the template's `extra_recipients`, always delivered
    through the queue like any message. A draft's row records its rendered content and no
    version (`template_version` NULL). Whether `to` may receive tests is the caller's check.
    """
    if (version is None) == (draft is None):
        raise ValueError("send_template_test takes a version or a draft, not both nor neither")
    jsoninput.check_value(variables, field="variables", max_depth=settings.API_MAX_JSON_DEPTH)
    _check_columns(template_key=template.key, source_endpoint=source_endpoint)
    recipients = parse_addresses(to, field="to", allow_empty=False)
    copies = _copies(to=recipients, cc=(), bcc=(), reply_to=None)
    fields = {"source_endpoint": source_endpoint, "sent_by": sent_by, **copies}
    prepared = _template_draft(template=template, version=version, recipients=recipients, variables=variables,
                               fields=fields, source=draft)
    return _write_and_queue([prepared], attachments=[], send_at=None)[0][0]


def send_simple_mail(
    to: str | Sequence[str],
    subject: str,
    text: str,
    *,
    links: Iterable[tuple[str, str] | str] = (),
    source_endpoint: str = "internal",
    sent_by=None,
    send_at: datetime | str | None = None,
) -> list[EmailMessage]:
    """Send a plain message with an optional list of links, without a template (001).

    Links are `(label, url)` pairs or bare URLs. The HTML part is built from the text with
    everything escaped; the message is audited exactly like a templated one.
    """
    send_at = scheduling.parse_send_at(send_at)
    recipients = parse_addresses(to, field="to", allow_empty=False)
    _check_recipient_count(recipients)
    for address in recipients:
        _check_columns(field="to", recipient_email=address)
    _check_columns(source_endpoint=source_endpoint)
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
            "max_attempts": settings.SMTP_RETRY_MAX_ATTEMPTS,
            "source_endpoint": source_endpoint,
            "sent_by": sent_by,
            "language": settings.LANGUAGE_CODE,
        },
    )
    return _write_and_queue([draft], attachments=[], send_at=send_at)[0]


def _prebuild(draft: Draft, messages: list[EmailMessage], *, attachments: list[Attachment], date: str) -> None:
    """Store each row's RFC 5322 bytes (`EmailMessage.mime`): the body built once per draft.

    A masked draft gets none: its bytes would hold the secret the audit masks, so it is built
    at delivery from the sealed rendering, as before. Nor does a draft whose attachments
    pass `EMAIL_PREBUILD_MAX_ATTACHMENT_BYTES` (every row would hold its own base64 copy,
    while the bytes live once in `AttachmentBlob`; encoding them is fast anyway), nor any
    draft when `EMAIL_BACKEND` does not send prebuilt bytes (ESPs, console, the database
    SMTP servers). `date` is when the message was complete and ready to enter the mail
    system (RFC 5322 3.6.1): the enqueue.
    """
    if draft.fields.get("is_masked") or not messages:
        return
    if sum(item.size for item in attachments) > settings.EMAIL_PREBUILD_MAX_ATTACHMENT_BYTES:
        return
    if not connections.configured_backend_sends_bytes():
        return

    def headers(message: EmailMessage) -> dict[str, str]:
        return {"To": message.recipient_email, "Date": date, **delivery.message_headers(message)}

    first = messages[0]
    template = mime.MimeTemplate.of(mime.django_email(
        subject=draft.rendered.subject, html=draft.rendered.html, text=draft.rendered.text,
        from_email=first.from_email, to=[first.recipient_email], cc=first.cc, bcc=first.bcc,
        reply_to=first.reply_to, headers=headers(first),
        attachments=[(item.filename, item.content, item.content_type) for item in attachments],
    ))
    for message in messages:
        message.mime = template.for_recipient(headers(message))


def _copies(*, to: list[str], cc, bcc, reply_to) -> dict[str, list[str]]:
    """The one message's cc, bcc and Reply-To, after checking the whole send's addresses.

    cc and bcc belong to one message: with several `to` addresses each gets a message of
    its own, so copying them onto each would send a cc'd address one copy per `to`.
    An address already among `to` (or `cc`) is dropped from `cc` (and `bcc`): one copy each.
    """
    copied = parse_addresses(cc, field="cc")
    blind = parse_addresses(bcc, field="bcc")
    taken = {address.lower() for address in to}
    copied = [address for address in copied if address.lower() not in taken]
    taken.update(address.lower() for address in copied)
    blind = [address for address in blind if address.lower() not in taken]
    _check_recipient_count([*to, *copied, *blind])
    if len(to) > 1 and (copied or blind):
        name = "cc" if copied else "bcc"
        raise InvalidRecipient(
            _(
                "%(name)s is allowed only with a single to address: each to address gets a message of its own, "
                "so send the copy with one of them."
            ) % {"name": name},
            field=name, code="copies_need_single_recipient",
        )
    for name, addresses in (("to", to), ("cc", copied), ("bcc", blind)):
        for address in addresses:
            _check_columns(field=name, recipient_email=address)
    reply = parse_addresses(reply_to, field="reply_to") if reply_to else []
    if not reply and settings.SMTP_REPLY_TO:
        reply = [settings.SMTP_REPLY_TO]
    return {"cc": copied, "bcc": blind, "reply_to": reply}


def _check_attachments(items: Iterable[AttachmentInput], *, template: EmailTemplate) -> list[Attachment]:
    items = list(items or ())
    if items and not template.attachments_allowed:
        raise AttachmentError(
            _("Email template %(key)s does not allow attachments.") % {"key": repr(template.key)},
            code="attachments_not_allowed",
        )
    max_bytes = int(settings.EMAIL_MAX_ATTACHMENT_SIZE_MB * 1024 * 1024)
    checked = []
    for index, item in enumerate(items):
        filename, content, content_type = _unpack_attachment(item, index)
        checked.append(
            check_attachment(
                filename=filename,
                content_type=content_type,
                content=content,
                allowed=settings.EMAIL_ALLOWED_ATTACHMENT_TYPES,
                max_bytes=max_bytes,
                index=index,
            )
        )
    return checked


def _unpack_attachment(item: AttachmentInput, index: int) -> tuple[str, bytes, str]:
    """Accept an `Attachment`, Django's `(filename, content, mimetype)` or a dict."""
    if isinstance(item, Attachment):
        return item.filename, item.content, item.content_type
    if isinstance(item, tuple) and len(item) == 3:
        filename, content, content_type = item
        return str(filename), content.encode() if isinstance(content, str) else content, str(content_type)
    if isinstance(item, Mapping):
        content = item.get("content")
        if content is None and "data_base64" in item:
            try:
                content = base64.b64decode(str(item["data_base64"]), validate=True)
            except (binascii.Error, ValueError):
                raise AttachmentError(
                    _("Attachment %(number)s: data_base64 is not valid base64.") % {"number": index + 1},
                    code="invalid_base64",
                ) from None
        if isinstance(content, str):
            content = content.encode()
        return str(item.get("filename") or ""), content, str(item.get("content_type") or "")
    raise AttachmentError(
        _("Attachment %(number)s: expected {filename, content_type, content} or (filename, content, type).")
        % {"number": index + 1}
    )


@transaction.atomic
def _write_and_queue(
    drafts: list[Draft], *, attachments: list[Attachment], send_at: datetime | None
) -> list[list[EmailMessage]]:
    """Write every draft's rows and attachments in one transaction; wake their lanes on commit.

    The status they are written with comes from the state machine (`lifecycle`): a suppressed
    address's row is written `suppressed`, with the reason (one query for the whole send).
    Returns the messages of each draft, in order.
    """
    now = timezone.now()
    initial = lifecycle.initial_fields(send_at=send_at, now=now)
    suppressed = suppression.reasons_at_send([(draft.recipients, draft.marketing) for draft in drafts]) \
        if initial["status"] != Status.SUPPRESSED else [{} for _ in drafts]

    def fields_for(index: int, address: str) -> dict:
        because = suppressed[index].get(suppression.normalise(address))
        return lifecycle.initial_fields(send_at=send_at, now=now, suppressed_because=because) if because else initial

    per_draft = [
        [
            EmailMessage(
                recipient_email=address,
                from_email=default_from_email(),
                subject=draft.rendered.subject,
                html_content=draft.rendered.html,
                text_content=draft.rendered.text,
                attachments_count=len(attachments),
                **fields_for(index, address),
                **draft.fields,
            )
            for address in draft.recipients
        ]
        for index, draft in enumerate(drafts)
    ]
    date = formatdate(localtime=settings.EMAIL_USE_LOCALTIME)
    for draft, group in zip(drafts, per_draft, strict=True):
        _prebuild(draft, group, attachments=attachments, date=date)
    messages = [message for group in per_draft for message in group]
    EmailMessage.objects.bulk_create(messages)
    if attachments:
        # One copy of each content, shared by every recipient (and by earlier messages).
        AttachmentBlob.objects.bulk_create(
            [AttachmentBlob(sha256=item.sha256, size_bytes=item.size, data=item.content) for item in attachments],
            ignore_conflicts=True,
        )
        EmailAttachment.objects.bulk_create(
            EmailAttachment(
                message=message,
                filename=item.filename,
                content_type=item.content_type,
                size_bytes=item.size,
                blob_id=item.sha256,
            )
            for message in messages
            for item in attachments
        )
    if initial["status"] == Status.QUEUED:
        # If the broker is down, the rows stay queued and the sweep wakes their lanes.
        wakeups.wake_on_commit({message.lane for message in messages if message.status == Status.QUEUED})
    return per_draft
