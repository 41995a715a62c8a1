"""Numbers as the reader writes them: `1 000 000` in French, `1,000,000` in English.

Every number a person reads inside a sentence (a limit, a size, a count, a stored error's
parameter) goes through `number`, in the language active for the request or the process;
an f-string's `{n:,}` would write English grouping into a French sentence.
"""
from __future__ import annotations

from django.utils import formats


def number(value: int | float) -> str:
    """`value` with the active locale's digit grouping and decimal separator."""
    return formats.number_format(value, use_l10n=True, force_grouping=True)
