"""A mail merge: `send_batch()`, one template rendered for each item with its own variables.

An item that cannot be sent is reported and the others go ahead; all are written in one
transaction.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.utils.translation import gettext as _

from notifications import jsoninput
from notifications.exceptions import BatchTooLarge, NotificationError, TemplateError
from notifications.models import Message
from notifications.channels.email.addresses import parse_addresses

from notifications.core.outbox import scheduling
from notifications.channels.email.drafts import Draft, template_draft
from notifications.channels.email.send_checks import AttachmentInput, check_attachments, check_columns, check_recipient_count, check_simulator_addresses, checked_copies, extra_recipients
from notifications.authoring.versions import get_template, select_version
from notifications.channels.email.writer import write_and_queue


@dataclass(frozen=True)
class BatchItemResult:
    """One item of a mail merge: its messages, or why it was refused."""

    index: int
    to: list[str]
    messages: list[Message] = field(default_factory=list)
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
    if len(items) > settings.SEND_MAX_BATCH_ITEMS:
        raise BatchTooLarge(
            _("%(count)s items given; at most %(limit)s are allowed per batch (SEND_MAX_BATCH_ITEMS).")
            % {"count": len(items), "limit": settings.SEND_MAX_BATCH_ITEMS},
            setting="SEND_MAX_BATCH_ITEMS",
        )
    send_at = scheduling.parse_send_at(send_at)
    check_columns(template_key=template_key, source_endpoint=source_endpoint, idempotency_key=idempotency_key)
    template = get_template(template_key)
    version = select_version(template, language=language)
    checked = check_attachments(attachments, template=template)
    common = {"source_endpoint": source_endpoint, "sent_by": sent_by, "idempotency_key": idempotency_key,
              "is_test": is_test, **checked_copies(to=[], cc=(), bcc=(), reply_to=None)}
    results: list[BatchItemResult] = []
    accepted: list[tuple[int, list[str], Mapping[str, object]]] = []
    for index, item in enumerate(items):
        try:
            recipients, variables = _batch_item(item)
            check_simulator_addresses({"to": recipients}, is_test=is_test)
        except NotificationError as exc:
            results.append(_refused_item(index, item, exc))
            continue
        accepted.append((index, recipients, variables))
    # Counted before anything is rendered: a batch past the cap costs no more than its parsing.
    addresses = sum(len(recipients) for _, recipients, _ in accepted)
    if addresses > settings.SEND_MAX_BATCH_RECIPIENTS:
        raise BatchTooLarge(
            _("%(count)s addresses given in all; at most %(limit)s are allowed per batch (SEND_MAX_BATCH_RECIPIENTS).")
            % {"count": addresses, "limit": settings.SEND_MAX_BATCH_RECIPIENTS},
            setting="SEND_MAX_BATCH_RECIPIENTS",
        )
    drafts: list[tuple[int, Draft]] = []
    for index, recipients, variables in accepted:
        try:
            draft = template_draft(template=template, version=version, variables=variables, fields=common,
                                    recipients=recipients + extra_recipients(template, besides=recipients))
        except NotificationError as exc:
            results.append(_refused_item(index, items[index], exc))
            continue
        drafts.append((index, draft))
    if not drafts:
        raise BatchRefused(results)
    written = write_and_queue([draft for _, draft in drafts], attachments=checked, send_at=send_at)
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
    check_recipient_count(recipients)
    for address in recipients:
        check_columns(field="to", address=address)
    variables = item.get("variables") or {}
    if not isinstance(variables, Mapping):
        raise TemplateError(_("Variables must be an object of name → value."), field="variables", code="invalid_variables")
    jsoninput.check_value(variables, field="variables", max_depth=settings.API_MAX_JSON_DEPTH)
    return recipients, variables
