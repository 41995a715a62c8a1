"""The checks a send makes before anything is rendered: columns, recipient caps, copies, attachments.

Each raises a `NotificationError` naming the field at fault, so a refused request leaves no row.
Shared by every way to send (`templated_mail`, `mail_merge`, `simple_mail`).
"""
from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping

from django.conf import settings
from django.utils.translation import gettext as _

from notifications import jsoninput
from notifications.core.addresses import address_key
from notifications.channels.email.attachments import Attachment, check_attachment
from notifications.channels.email.backends import development
from notifications.exceptions import AttachmentError, InvalidRecipient, TooManyRecipients, UnstorableText, ValueTooLong
from notifications.models import Message, EmailTemplate
from notifications.channels.email.addresses import parse_addresses

AttachmentInput = Attachment | Mapping[str, object] | tuple


def check_recipient_count(addresses: list[str]) -> None:
    limit = settings.SEND_MAX_RECIPIENTS_PER_REQUEST
    if len(addresses) > limit:
        raise TooManyRecipients(
            _(
                "%(count)s addresses given (to, cc and bcc together); at most %(limit)s are allowed per request "
                "(SEND_MAX_RECIPIENTS_PER_REQUEST)."
            ) % {"count": len(addresses), "limit": limit},
        )


def check_simulator_addresses(addresses: Mapping[str, Iterable[str]], *, is_test: bool) -> None:
    """Refuse an address on `simulator.invalid` unless a test key sends it or `EMAIL_BACKEND` is
    the development backend: only those honour them (`backends.development`); anywhere else such
    a message would go to a real server, which can only fail it. `addresses`: field → addresses.
    """
    if is_test:
        return
    for field, values in addresses.items():
        for address in values:
            if development.is_simulator_address(address) and not development.configured():
                raise InvalidRecipient(
                    _(
                        "%(address)s is a simulator address: it works only with a test key (or with "
                        "EMAIL_BACKEND=notifications.backends.DevelopmentBackend); a live key delivers for real."
                    ) % {"address": address},
                    field=field, code="simulator_address_needs_test_key",
                )


def extra_recipients(template: EmailTemplate, *, besides: Iterable[str]) -> list[str]:
    """The template's `extra_recipients` that are not already among `besides`: one copy each."""
    taken = {address_key(address) for address in besides}
    extra = parse_addresses(list(template.extra_recipients), field="extra_recipients")
    return [address for address in extra if address_key(address) not in taken]


def check_columns(*, field: str | None = None, **values: object) -> None:
    """Refuse what an `Message` column cannot hold: a NUL, or more characters than it has.

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
        limit = Message._meta.get_field(column).max_length
        if limit is not None and len(value) > limit:
            shown = value[:40] + "..." if len(value) > 40 else value
            raise ValueTooLong(
                _("%(name)s %(value)s is %(length)s characters long; at most %(limit)s fit.")
                % {"name": name, "value": repr(shown), "length": len(value), "limit": limit},
                field=name,
            )


def checked_copies(*, to: list[str], cc, bcc, reply_to) -> dict[str, list[str]]:
    """The one message's cc, bcc and Reply-To, after checking the whole send's addresses.

    cc and bcc belong to one message: with several `to` addresses each gets a message of
    its own, so copying them onto each would send a cc'd address one copy per `to`.
    An address already among `to` (or `cc`) is dropped from `cc` (and `bcc`): one copy each.
    """
    copied = parse_addresses(cc, field="cc")
    blind = parse_addresses(bcc, field="bcc")
    taken = {address_key(address) for address in to}
    copied = [address for address in copied if address_key(address) not in taken]
    taken.update(address_key(address) for address in copied)
    blind = [address for address in blind if address_key(address) not in taken]
    check_recipient_count([*to, *copied, *blind])
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
            check_columns(field=name, address=address)
    reply = parse_addresses(reply_to, field="reply_to") if reply_to else []
    if not reply and settings.SMTP_REPLY_TO:
        reply = [settings.SMTP_REPLY_TO]
    return {"cc": copied, "bcc": blind, "reply_to": reply}


def check_attachments(items: Iterable[AttachmentInput], *, template: EmailTemplate) -> list[Attachment]:
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
