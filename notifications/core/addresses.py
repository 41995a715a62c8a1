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

    - any other kind: trimmed only, never lower-cased as if it were an email address; a kind
      whose addresses have several spellings (a phone number next) adds its form here.

    `Channel.suppression_key` calls it with the channel's address kind, so the suppression list
    stores and finds an address in the one form.
    """
    if kind == EMAIL:
        return address.strip().lower()
    return address.strip()


__all__ = ["EMAIL", "address_key"]
