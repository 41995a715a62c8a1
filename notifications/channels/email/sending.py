"""The public sending API: `send_mail_template()`, `send_batch()` and `send_simple_mail()`.

Every one validates everything first, renders once, then writes the audit rows and their
attachments in one transaction and queues delivery only once that transaction commits.
A refused request therefore leaves no row, and an accepted one is never lost: the row
exists before any worker is asked to send it.

The work lives in modules of one responsibility each; this one only gathers the names
callers import (the API, the admin, the tests, the benchmarks):

- `send_checks`: what a send checks before rendering (columns, caps, copies, attachments);
- `drafts`: a send's rendering in the sandbox, masked and sealed, and its row's fields;
- `writer`: the one transaction that writes rows, prebuilt MIME and attachments, and wakes the lanes;
- `templated`: `send_mail_template()`, `send_template_test()`;
- `mail_merge`: `send_batch()`;
- `simple`: `send_simple_mail()`.
"""
from __future__ import annotations

from notifications.channels.email.drafts import Draft
from notifications.channels.email.mail_merge import BatchItemResult, BatchRefused, send_batch
from notifications.channels.email.send_checks import AttachmentInput
from notifications.channels.email.simple import send_simple_mail
from notifications.channels.email.templated import send_mail_template, send_template_test
from notifications.channels.email.writer import default_from_email, prebuild, write_and_queue

# The writer's former private names, for code written against the single module.
_prebuild = prebuild
_write_and_queue = write_and_queue

__all__ = [
    "AttachmentInput",
    "BatchItemResult",
    "BatchRefused",
    "Draft",
    "default_from_email",
    "send_batch",
    "send_mail_template",
    "send_simple_mail",
    "send_template_test",
]
