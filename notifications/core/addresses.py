"""The one form an address is compared, deduplicated and suppressed in, for each kind of address.

A plain function of the core, with no import of any channel: the models, the policies and
each channel compare addresses through it, so two spellings of one address are one address
everywhere (the suppression list, a send's cc and bcc, an event matched to its message).
"""
from __future__ import annotations

EMAIL = "email"


def address_key(address: str, *, kind: str = EMAIL) -> str:
    """`address` as compared, for its `kind`.

    - email: trimmed and in lower case, the whole address: providers treat local parts
      case-insensitively, and so does a person reading the list.

    Another kind (a phone number next) adds its own form here; an unknown kind is refused
    rather than compared as an email address.
    """
    if kind != EMAIL:
        raise ValueError(f"No address key for the address kind {kind!r}.")
    return address.strip().lower()


__all__ = ["EMAIL", "address_key"]
