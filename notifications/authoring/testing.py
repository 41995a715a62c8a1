"""Test sends of a template, from every route: who may receive them, and the send itself.

Like Notify's test keys, which mail only the team: a test goes to the sender's own address
or to one allowed by `EMAIL_TEST_RECIPIENTS` (addresses, and `@domain` for a whole domain),
never to the template's `extra_recipients`. The admin's editor (`send_test`) and the API's
`POST /templates/{key}/test` (`send_rendered_test`) both pass `allowed_test_recipient`, the
one check: a Template editor holds no `send_email` permission, so a test route that mailed
anyone would be a way to send arbitrary content to arbitrary people. A test is a real
message, audited with its route's `source_endpoint` and `sent_by` the editor, delivered
through the queue.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from django.conf import settings
from django.utils.translation import gettext as _

from notifications.core.addresses import address_key
from notifications.exceptions import InvalidRecipient
from notifications.models import Message, EmailTemplate, EmailTemplateVersion
from notifications.channels.email.addresses import parse_addresses
from notifications.authoring.rendering import VersionSource

from notifications.channels.email.templated import send_mail_template, send_template_test

SOURCE_ENDPOINT = "admin-test"
API_SOURCE_ENDPOINT = "api-test"


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
    key = address_key(parsed)
    allowed = {address_key(entry) for entry in settings.EMAIL_TEST_RECIPIENTS if entry.strip()}
    domain = "@" + key.rsplit("@", 1)[-1]
    if key == address_key(own) or key in allowed or domain in allowed:
        return parsed
    raise InvalidRecipient(
        _("%(address)s may not receive test sends: only your own address or one allowed by "
          "EMAIL_TEST_RECIPIENTS (addresses and @domains).") % {"address": parsed},
        field="to", code="test_recipient_not_allowed",
    )


def send_test(
    *, template: EmailTemplate, user, to: str = "", variables: Mapping[str, object],
    version: EmailTemplateVersion | None = None, draft: VersionSource | None = None,
) -> Message:
    """Send `version`, or the unsaved `draft`, to an allowed test address (see the module)."""
    address = allowed_test_recipient(address=to, user=user)
    return send_template_test(
        template=template, to=address, variables=variables, version=version, draft=draft,
        source_endpoint=SOURCE_ENDPOINT, sent_by=user,
    )


def send_rendered_test(
    *, template_key: str, to: str | Sequence[str], variables: Mapping[str, object], user,
    language: str | None = None, is_test: bool = False,
) -> list[Message]:
    """The API's test route: render the active version and send it to allowed test addresses only.

    Every address is checked before anything is written: one refused address refuses the
    whole request (`test_recipient_not_allowed`, naming it), so no message reaches anyone.
    """
    addresses = [allowed_test_recipient(address=address, user=user)
                 for address in parse_addresses(to, field="to", allow_empty=False)]
    return send_mail_template(
        template_key, addresses, variables, language=language, source_endpoint=API_SOURCE_ENDPOINT,
        sent_by=user, is_test=is_test, include_extra_recipients=False,
    )
