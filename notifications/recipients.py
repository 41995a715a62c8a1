"""Parsing and validating addresses given as one string, a comma-separated string or a list."""
from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from notifications.exceptions import InvalidRecipient, TooManyRecipients


def parse_addresses(value: str | Iterable[str] | None, *, field: str, allow_empty: bool = True) -> list[str]:
    """Split, strip, validate and de-duplicate (case-insensitively, first spelling kept).

    Raises `InvalidRecipient` naming `field` and every bad address at once.
    """
    if value is None:
        items: list = []
    elif isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise InvalidRecipient(
            f"Expected an address, a comma-separated string of addresses or a list; got {type(value).__name__}.",
            field=field,
        )
    addresses: list[str] = []
    seen: set[str] = set()
    bad: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise InvalidRecipient(f"Every address must be a string; got {type(item).__name__}.", field=field)
        address = item.strip()
        if not address:
            continue
        try:
            validate_email(address)
        except ValidationError:
            bad.append(address)
            continue
        if address.lower() not in seen:
            seen.add(address.lower())
            addresses.append(address)
    if bad:
        raise InvalidRecipient("Invalid email address: " + ", ".join(repr(a[:254]) for a in bad[:10]) + ".", field=field)
    if not addresses and not allow_empty:
        raise InvalidRecipient("At least one recipient address is required.", field=field)
    return addresses


def check_recipient_count(addresses: list[str], *, limit: int, field: str = "to") -> None:
    if len(addresses) > limit:
        raise TooManyRecipients(
            f"{len(addresses)} recipients given; at most {limit} are allowed per request "
            "(EMAIL_MAX_RECIPIENTS_PER_REQUEST).",
            field=field,
        )
