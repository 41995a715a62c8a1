"""Test sends from the template editor: who may receive them, and the send itself.

Like Notify's test keys, which mail only the team: a test goes to the editor's own address
or to one allowed by `EMAIL_TEST_RECIPIENTS` (addresses, and `@domain` for a whole domain),
never to the template's `extra_recipients`. It is a real message, audited with
`source_endpoint` `admin-test` and `sent_by` the editor, delivered through the queue.
"""
from __future__ import annotations

from collections.abc import Mapping

from django.conf import settings
from django.utils.translation import gettext as _

from notifications.exceptions import InvalidRecipient
from notifications.models import EmailMessage, EmailTemplate, EmailTemplateVersion
from notifications.recipients import parse_addresses
from notifications.rendering import VersionSource

from .templated_mail import send_template_test

SOURCE_ENDPOINT = "admin-test"


def allowed_test_recipient(*, address: str, user) -> str:
    """`address` (empty: the user's own) if a test may go there; else refused naming it and the setting."""
    own = (getattr(user, "email", "") or "").strip()
    if not address or not address.strip():
        if not own:
            raise InvalidRecipient(
                _("Your account has no email address: give a test address allowed by EMAIL_TEST_RECIPIENTS."),
                field="to", code="test_recipient_not_allowed",
            )
        address = own
    [parsed] = parse_addresses(address.strip(), field="to", allow_empty=False)[:1]
    lowered = parsed.lower()
    allowed = {entry.strip().lower() for entry in settings.EMAIL_TEST_RECIPIENTS if entry.strip()}
    domain = "@" + lowered.rsplit("@", 1)[-1]
    if lowered == own.lower() or lowered in allowed or domain in allowed:
        return parsed
    raise InvalidRecipient(
        _("%(address)s may not receive test sends: only your own address or one allowed by "
          "EMAIL_TEST_RECIPIENTS (addresses and @domains).") % {"address": parsed},
        field="to", code="test_recipient_not_allowed",
    )


def send_test(
    *, template: EmailTemplate, user, to: str = "", variables: Mapping[str, object],
    version: EmailTemplateVersion | None = None, draft: VersionSource | None = None,
) -> EmailMessage:
    """Send `version`, or the unsaved `draft`, to an allowed test address (see the module)."""
    address = allowed_test_recipient(address=to, user=user)
    return send_template_test(
        template=template, to=address, variables=variables, version=version, draft=draft,
        source_endpoint=SOURCE_ENDPOINT, sent_by=user,
    )
