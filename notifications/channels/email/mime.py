"""A message's RFC 5322 bytes: built once, when it is queued, and sent as they are.

Building a message with Django's classes (alternatives, base64 attachments, header
encoding and folding) costs more than sending it. `MimeTemplate.of(email)` does it once for
what every recipient of one send shares, from the same `EmailMultiAlternatives` a delivery
would build (`django_email`), and `for_recipient()` fills in the only headers that differ
per row, `PER_RECIPIENT`, encoded and folded exactly as Django's generator does. The result
is byte for byte what Django's SMTP backend would send, in Django's header order.

`PrebuiltEmail` carries such bytes through a backend that sends `message().as_bytes()`
(Django's SMTP backend and ours, see `connections.sends_message_bytes`); every other
backend gets a message built the usual way.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from email.generator import BytesGenerator
from email.policy import Compat32, compat32
from functools import lru_cache
from io import BytesIO

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import forbid_multi_line_headers
from django.utils.translation import gettext as _

from notifications.exceptions import UnsafeHeaderValue
from notifications.channels.email.headers import header_problem, subject_problem

#: The headers that differ between the recipients of one send; everything else is shared.
PER_RECIPIENT = ("To", "Date", "Message-ID", "X-Notification-Id")
CRLF = b"\r\n"
# Django's messages use the compat32 policy; its generator folds each header this way.
_FOLDING = compat32.clone(linesep="\r\n")
#: How many folded header fields `MimeTemplate.of` remembers (see `_RememberedFolding`).
FOLD_CACHE_SIZE = 512


def django_email(
    *,
    subject: str,
    html: str,
    text: str,
    from_email: str,
    to: Sequence[str],
    cc: Sequence[str] = (),
    bcc: Sequence[str] = (),
    reply_to: Sequence[str] = (),
    headers: Mapping[str, str],
    attachments: Iterable[tuple[str, bytes, str]] = (),
    connection=None,
) -> EmailMultiAlternatives:
    """The Django email of a rendering: text body, HTML alternative, attachments.

    Every backend builds its headers from this email (our prebuilt bytes, Django's SMTP
    backend, anymail's payloads), so it is the last place a value that could break a header
    is stopped, whatever let it through: `UnsafeHeaderValue` names the field.
    """
    check_header_values(
        subject=subject, from_email=from_email, to=to, cc=cc, bcc=bcc, reply_to=reply_to, headers=headers,
        filenames=[filename for filename, _, _ in attachments],
    )
    email = EmailMultiAlternatives(
        subject=subject, body=text, from_email=from_email, to=list(to), cc=list(cc), bcc=list(bcc),
        reply_to=list(reply_to), headers=dict(headers), connection=connection,
    )
    if html:
        email.attach_alternative(html, "text/html")
    for filename, content, content_type in attachments:
        email.attach(filename, content, content_type)
    return email


def check_header_values(
    *,
    subject: str,
    from_email: str,
    to: Sequence[str] = (),
    cc: Sequence[str] = (),
    bcc: Sequence[str] = (),
    reply_to: Sequence[str] = (),
    headers: Mapping[str, str] | None = None,
    filenames: Iterable[str] = (),
) -> None:
    """Raise `UnsafeHeaderValue` naming the first value that could break its header (`notifications.channels.email.headers`)."""
    checks: list[tuple[str, str, str | None]] = [
        ("subject", subject, subject_problem(subject)),
        ("from_email", from_email, header_problem(from_email, allow_bidi=True)),
    ]
    checks += [
        (field, value, header_problem(value))
        for field, values in (("to", to), ("cc", cc), ("bcc", bcc), ("reply_to", reply_to))
        for value in values
    ]
    checks += [(name, str(value), header_problem(str(value))) for name, value in (headers or {}).items()]
    checks += [("attachments", name, header_problem(name)) for name in filenames]
    for field, value, problem in checks:
        if problem:
            raise UnsafeHeaderValue(
                _("%(field)s %(value)s cannot go into a mail header: %(problem)s.")
                % {"field": field, "value": repr(value[:80]), "problem": problem},
                field=field,
            )


@dataclass(frozen=True)
class MimeTemplate:
    """A built message with holes for the `PER_RECIPIENT` headers.

    `pieces` are the bytes as built, in order, and in place of each per-recipient header
    its name. Only the shared part is expensive; filling the holes costs a few header folds.
    """

    pieces: tuple[bytes | str, ...]
    encoding: str

    @classmethod
    def of(cls, email: EmailMultiAlternatives) -> MimeTemplate:
        """Build `email` once; it must carry every `PER_RECIPIENT` header (any value)."""
        raw = _as_bytes(email.message())
        head, _, body = raw.partition(CRLF + CRLF)
        names = {name.lower(): name for name in PER_RECIPIENT}
        pieces: list[bytes | str] = []
        for field in _header_fields(head):
            name = field.partition(b":")[0].decode("ascii").strip().lower()
            pieces.append(names.get(name, field))
        missing = set(names.values()) - {piece for piece in pieces if isinstance(piece, str)}
        if missing:
            raise ValueError(f"The email lacks the per-recipient headers {sorted(missing)}.")
        pieces.append(CRLF + body)
        return cls(tuple(pieces), email.encoding or settings.DEFAULT_CHARSET)

    def for_recipient(self, headers: Mapping[str, str]) -> bytes:
        """The whole message with these `PER_RECIPIENT` header values."""
        return b"".join(
            piece if isinstance(piece, bytes) else self._header(piece, headers[piece]) for piece in self.pieces
        )

    def _header(self, name: str, value: str) -> bytes:
        # What Django's SafeMIME classes do on assignment, then what the generator writes.
        problem = header_problem(value)
        if problem:
            raise UnsafeHeaderValue(
                _("%(field)s %(value)s cannot go into a mail header: %(problem)s.")
                % {"field": name, "value": repr(value[:80]), "problem": problem},
                field=name,
            )
        name, value = forbid_multi_line_headers(name, value, self.encoding)
        return _FOLDING.fold_binary(name, value)


class _RememberedFolding(Compat32):
    """compat32, Django's policy, whose folded header fields are remembered.

    Folding a field (`email.header.Header`) is pure Python and costs more than the rest of a
    build; most fields are the same in every send (MIME-Version, Content-Type of each part,
    Content-Transfer-Encoding, From, Reply-To, a template's subject). The fold of a `str`
    value is a pure function of the name, the value and the policy's settings, so a
    remembered one is byte for byte what compat32 would write; other values (a `Header`)
    are folded as usual. The `PER_RECIPIENT` fields are holes `MimeTemplate.of` cuts out
    and `for_recipient` fills, checked and folded there: here they are written unfolded.
    """

    def fold_binary(self, name, value):
        if name.lower() in _HOLES:
            return f"{name}: (per recipient)".encode("ascii", "surrogateescape") + self.linesep.encode("ascii")
        if not isinstance(value, str):
            return super().fold_binary(name, value)
        return _fold_binary(name, value, self.linesep, self.max_line_length, self.cte_type)


@lru_cache(maxsize=FOLD_CACHE_SIZE)
def _fold_binary(name: str, value: str, linesep: str, max_line_length, cte_type: str) -> bytes:
    return compat32.clone(linesep=linesep, max_line_length=max_line_length, cte_type=cte_type).fold_binary(name, value)


_HOLES = frozenset(name.lower() for name in PER_RECIPIENT)
_REMEMBERED_FOLDING = _RememberedFolding()


class _Generator(BytesGenerator):
    """Django's generator (`BytesGenerator`, no From_ mangling), but for how a boundary is checked.

    The library compiles a regular expression for each new (random) boundary to make sure no
    line of the text is that boundary; a line can only be one if the text contains it at
    all, which a substring search tells at once. Only then is the library's own search run.
    """

    @classmethod
    def _make_boundary(cls, text=None):
        boundary = super()._make_boundary()
        if text is None:
            return boundary
        needle = "--" + boundary
        if (needle.encode("ascii") if isinstance(text, bytes) else needle) not in text:
            return boundary
        return super()._make_boundary(text)


def _as_bytes(message) -> bytes:
    """The bytes `MimeTemplate.of` cuts up: what Django's `message.as_bytes(linesep="\\r\\n")`
    writes (no From_ mangling), folded through `_RememberedFolding` (its holes unfolded)."""
    out = BytesIO()
    _Generator(out, mangle_from_=False, policy=_REMEMBERED_FOLDING).flatten(message, linesep="\r\n")
    return out.getvalue()


def _header_fields(head: bytes) -> list[bytes]:
    """The header block split into fields, each with its continuation lines and final CRLF."""
    fields: list[bytes] = []
    for line in head.split(CRLF):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line + CRLF
        else:
            fields.append(line + CRLF)
    return fields


class PrebuiltEmail(EmailMultiAlternatives):
    """An email whose message is already built: `message().as_bytes()` are the stored bytes.

    Only for backends that send exactly that (SMTP); the envelope (`from_email`,
    `recipients()`) and `extra_headers["Message-ID"]` are set as for a built email.
    """

    def __init__(self, mime: bytes, **kwargs) -> None:
        super().__init__(**kwargs)
        self.mime = bytes(mime)

    def message(self) -> PrebuiltMessage:
        return PrebuiltMessage(self.mime)


class PrebuiltMessage:
    """The little of `email.message.Message` an SMTP backend uses: its bytes."""

    def __init__(self, mime: bytes) -> None:
        self.mime = mime

    def as_bytes(self, unixfrom: bool = False, linesep: str = "\n") -> bytes:
        return self.mime if linesep == "\r\n" else self.mime.replace(CRLF, linesep.encode())

    def __bytes__(self) -> bytes:
        return self.as_bytes()


__all__ = ["PER_RECIPIENT", "MimeTemplate", "PrebuiltEmail", "check_header_values", "django_email"]
