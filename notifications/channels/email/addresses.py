"""The one parser of email addresses: every address the service accepts passes through here.

Recipients (`to`, `cc`, `bcc`, `send-batch` items), `reply_to`, a template's
`extra_recipients`, an SMTP server's `from_email` and the `SMTP_FROM_EMAIL` /
`SMTP_REPLY_TO` settings. An address is a bare mailbox (`local@domain`, no display name)
as RFC 5321 and 5322 allow it, with nothing that could break the header or the SMTP
command it is written into:

- no control or bidirectional-control character anywhere, inside quotes included
  (Django's validator lets some through a quoted local part, and Python's generator turns
  them into line breaks: see `notifications.channels.email.headers`);
- a local part as RFC 5321 4.1.2 writes it, a dot-string (`john.doe+x`) or a quoted
  string of printable ASCII (`"john doe"`), 1 to 64 characters (`""@example.com` is
  refused: servers answer 553); non-ASCII local parts are refused, as before;
- at most 254 characters in all, the domain counted in its ASCII (IDNA) form, since that
  is what goes into `RCPT TO` (RFC 5321 4.5.3.1);
- a domain Django's validator accepts (internationalised domains and address literals
  included, and `localhost`).
"""
from __future__ import annotations

import re
from collections.abc import Iterable

from django.core.validators import EmailValidator
from django.utils.translation import gettext as _

from notifications.core.addresses import address_key
from notifications.exceptions import InvalidRecipient
from notifications.channels.email.headers import header_problem

#: RFC 5321 4.5.3.1.1: the longest local part.
MAX_LOCAL_PART_LENGTH = 64
#: RFC 5321 4.5.3.1.3: a path is at most 256 octets with its angle brackets.
MAX_ADDRESS_LENGTH = 254

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
#: RFC 5321 4.1.2 Local-part: Dot-string / Quoted-string (qtextSMTP and quoted-pairSMTP are
#: printable ASCII and space only: no control character can be written into one).
_LOCAL_PART = re.compile(rf'{_ATEXT}+(?:\.{_ATEXT}+)*|"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\[\x20-\x7e])*"')
_DOMAINS = EmailValidator()


def address_problem(address: str) -> str | None:
    """Why `address` (already stripped) is not a mailbox the service may send to or from, or None."""
    problem = header_problem(address)
    if problem:
        return _("%(problem)s; no part of an address may hold one, quoted or not") % {"problem": problem}
    if len(address) > MAX_ADDRESS_LENGTH:
        return _("it is %(length)s characters long; at most %(limit)s are allowed") % {
            "length": len(address), "limit": MAX_ADDRESS_LENGTH,
        }
    local, at, domain = address.rpartition("@")
    if not at or not domain:
        return _("it is not a valid email address (expected name@domain)")
    if local.strip('"') == "":
        return _("the part before @ is empty")
    if len(local) > MAX_LOCAL_PART_LENGTH:
        return _("the part before @ is %(length)s characters long; at most %(limit)s are allowed") % {
            "length": len(local), "limit": MAX_LOCAL_PART_LENGTH,
        }
    if not _LOCAL_PART.fullmatch(local):
        return _("it is not a valid email address (the part before @ is not a valid local part)")
    if domain not in _DOMAINS.domain_allowlist and not _DOMAINS.validate_domain_part(domain):
        return _("it is not a valid email address (the part after @ is not a valid domain)")
    try:
        ascii_length = len(local) + 1 + len(domain.encode("idna"))
    except UnicodeError:
        return _("its domain is not a valid domain name")
    if ascii_length > MAX_ADDRESS_LENGTH:
        return _(
            "it is %(length)s characters long with its domain in ASCII (IDNA) form; at most %(limit)s are allowed"
        ) % {"length": ascii_length, "limit": MAX_ADDRESS_LENGTH}
    return None


def _shown(value: str) -> str:
    """The address as an error quotes it: escaped (`repr`), and shortened when long."""
    return repr(value if len(value) <= 80 else value[:77] + "...")


def parse_address(value: object, *, field: str) -> str:
    """One address, stripped of surrounding spaces; `InvalidRecipient` naming `field` says why not."""
    if not isinstance(value, str):
        raise InvalidRecipient(
            _("Expected an email address; got %(type)s.") % {"type": type(value).__name__}, field=field
        )
    problem = address_problem(value.strip(" "))
    if problem:
        raise InvalidRecipient(
            _("Invalid email address %(address)s: %(problem)s.") % {"address": _shown(value), "problem": problem},
            field=field,
        )
    return value.strip(" ")


def parse_addresses(value: str | Iterable[str] | None, *, field: str, allow_empty: bool = True) -> list[str]:
    """Split, strip, validate and de-duplicate (case-insensitively, first spelling kept).

    `value` is an address, a comma-separated string of addresses or a list. Raises
    `InvalidRecipient` naming `field` and every bad address at once, each with its
    position (`Invalid email address 3 ('x@'): ...`, counted from 1 as the caller wrote them).
    """
    if value is None:
        items: list = []
    elif isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise InvalidRecipient(
            _("Expected an address, a comma-separated string of addresses or a list; got %(type)s.")
            % {"type": type(value).__name__},
            field=field,
        )
    addresses: list[str] = []
    seen: set[str] = set()
    bad: list[str] = []
    for position, item in enumerate(items, start=1):
        if not isinstance(item, str):
            bad.append(
                _("Address %(position)s must be a string; got %(type)s.")
                % {"position": position, "type": type(item).__name__}
            )
            continue
        if not item.strip(" "):
            continue
        # Only spaces are stripped: str.strip() would quietly drop a leading VT, NEL or LS.
        problem = address_problem(item.strip(" "))
        if problem:
            bad.append(
                _("Invalid email address %(position)s (%(address)s): %(problem)s.")
                % {"position": position, "address": _shown(item.strip(" ")), "problem": problem}
            )
            continue
        address = item.strip(" ")
        if address_key(address) not in seen:
            seen.add(address_key(address))
            addresses.append(address)
    if bad:
        more = _(" (and %(count)s more)") % {"count": len(bad) - 10} if len(bad) > 10 else ""
        raise InvalidRecipient(" ".join(bad[:10]) + more, field=field)
    if not addresses and not allow_empty:
        raise InvalidRecipient(_("At least one recipient address is required."), field=field)
    return addresses
