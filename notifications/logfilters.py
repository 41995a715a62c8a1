"""Logging filters: what must never reach a log.

A staff member's set-password link (`access.staff`) carries a token that sets the account's
password: the web server's access log (`django.server` under `make run`) would otherwise keep
it for anyone who reads the log. The token is replaced by `[redacted]`; the URL Django
redirects to once the token is in the session (`…/set-password/`) is kept as it is.
"""
from __future__ import annotations

import logging
import re

STAFF_LINK = re.compile(r"(/admin/staff-link/[^/\s]+/)(?!set-password/)[^/\s\"'?]+")


def redact(text: str) -> str:
    return STAFF_LINK.sub(r"\1[redacted]", text)


class RedactSecrets(logging.Filter):
    """Rewrites a record whose message holds a set-password token; never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True
