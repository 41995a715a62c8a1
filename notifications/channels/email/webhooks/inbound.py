"""The inbound routes' own bounds: a whole message up to `EMAIL_INBOUND_MAX_BYTES`, and as
many attachments as providers send.

SendGrid's Inbound Parse posts a message of up to 30 MB (its documented limit, attachments
included) as `multipart/form-data`, one file per attachment. Django's form parsing would
refuse it (`DATA_UPLOAD_MAX_NUMBER_FILES`, 100 files; `DATA_UPLOAD_MAX_MEMORY_SIZE`) with its
HTML 400, and the mail would be lost. So on these routes alone the form is parsed here, with
the standard library's MIME parser (as anymail itself re-parses SendGrid's form), bounded by
the body's size rather than by a number of files. Everything refused is a JSON answer, and
logged: a body declared larger than the message cap plus `FORM_OVERHEAD_BYTES` before a
byte is read, a message measured larger than the cap once parsed.
"""
from __future__ import annotations

import functools

import logging
from email import policy
from email.parser import BytesParser

from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import QueryDict
from django.urls import reverse
from django.utils.datastructures import MultiValueDict
from django.utils.translation import gettext as _
from notifications.formatting import number

from notifications.channels.email.webhooks.errors import InboundTooLarge, UnreadablePayload

logger = logging.getLogger(__name__)

# Field names, boundaries and SendGrid's parsed extras (headers, spam report, envelope)
# around the message itself.
FORM_OVERHEAD_BYTES = 1024 * 1024
# Parts of one form: far above any real message's attachments (each is one part).
MAX_FORM_PARTS = 10_000
ROUTE_NAMES = ("sendgrid_inbound_webhook", "amazon_ses_inbound_webhook")


def body_limit() -> int:
    """The largest body the inbound routes read: the message cap and the form around it."""
    return settings.EMAIL_INBOUND_MAX_BYTES + FORM_OVERHEAD_BYTES


@functools.cache
def _inbound_paths() -> frozenset[str]:
    return frozenset(reverse(name) for name in ROUTE_NAMES)


def is_inbound_path(path: str) -> bool:
    """Whether `path` is an inbound route: asked by the middleware on every request, so the
    routes are reversed once per process."""
    return path in _inbound_paths()


def too_large(size: int) -> InboundTooLarge:
    return InboundTooLarge(
        _("The inbound message (%(size)s bytes) is larger than the %(limit)s bytes allowed "
          "(EMAIL_INBOUND_MAX_BYTES).") % {"size": number(size), "limit": number(settings.EMAIL_INBOUND_MAX_BYTES)}
    )


class InboundMixin:
    """For the inbound views: the bounds above, then anymail's `inbound` signal per message."""

    def prepare(self, request) -> None:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
        if declared > body_limit():
            raise too_large(declared)
        if request.content_type == "multipart/form-data":
            read_form(request)
        super().prepare(request)

    def check_events(self, events) -> None:
        for event in events:
            try:
                size = len(event.message.as_bytes())
            except Exception:  # noqa: BLE001 - a malformed part the serializer refuses: kept, size unknown
                size = 0
            if size > settings.EMAIL_INBOUND_MAX_BYTES:
                raise too_large(size)
            event.raw_size = size  # measured once: services.inbound.store reads it

    def deliver(self, events) -> None:
        for event in events:
            self.signal.send(sender=self.__class__, event=event, esp_name=self.esp_name)


def read_form(request) -> None:
    """Fill `request.POST` and `request.FILES` from a multipart body, without Django's caps on
    the number of files and on the in-memory size (the route's own limit applies)."""
    data = request._body if hasattr(request, "_body") else request.read()
    request._body = data  # anymail reads `request.body` again for SendGrid's charsets
    content_type = request.META.get("CONTENT_TYPE", "").encode("latin-1", "replace")
    document = BytesParser(policy=policy.HTTP).parsebytes(b"Content-Type: " + content_type + b"\r\n\r\n" + data)
    if not document.is_multipart():
        raise UnreadablePayload(_("The inbound form is not multipart/form-data with a boundary."))
    parts = document.get_payload()
    if len(parts) > MAX_FORM_PARTS:
        raise InboundTooLarge(_("The inbound form has more than %(limit)s parts.") % {"limit": MAX_FORM_PARTS})
    encoding = request.encoding or settings.DEFAULT_CHARSET
    fields = QueryDict(mutable=True, encoding=encoding)
    files = MultiValueDict()
    for part in parts:
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        filename = part.get_param("filename", header="content-disposition")
        content = part.get_payload(decode=True) or b""
        if filename is None:
            fields.appendlist(str(name), content.decode(part.get_content_charset() or encoding, "replace"))
        else:
            files.appendlist(str(name), SimpleUploadedFile(
                _safe_name(str(filename)), content, content_type=part.get_content_type(),
            ))
    fields._mutable = False
    request._post, request._files = fields, files


def _safe_name(filename: str) -> str:
    """The last path segment of a client's file name, as Django's parser keeps it."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1].replace("\x00", "").strip()
    return name[:255] or "attachment"
