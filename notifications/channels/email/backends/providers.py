"""Which provider a backend hands mail to: the key recorded on each message it sends
(`Message.provider`), and the key of the webhook routes whose events may change it.

The key is derived from the backend actually used, never from a name staff can edit
(`sent_via` is the `SMTPServerConfig.name`): anymail's backends by their module
(`amazon_ses`, `sendgrid`, ...; the same names as anymail's webhook modules), SMTP by its
host (an ESP's documented SMTP relay is that ESP, so SES reached over SMTP still takes SES's
events; `EMAIL_SMTP_PROVIDER` names the ESP behind a relay of the operator's own), anything
else by its module (`locmem`, `console`, `filebased`). The test-key simulator records
`simulator`.
"""
from __future__ import annotations

import re

from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.smtp import EmailBackend as DjangoSMTPBackend

SMTP = "smtp"
SIMULATOR = "simulator"
AMAZON_SES = "amazon_ses"
SENDGRID = "sendgrid"

# The ESPs' documented SMTP relays:
# https://docs.aws.amazon.com/ses/latest/dg/smtp-connect.html (email-smtp[-fips].<region>.amazonaws.com)
# https://www.twilio.com/docs/sendgrid/for-developers/sending-email/integrating-with-the-smtp-api (smtp.sendgrid.net)
SMTP_RELAYS = (
    (re.compile(r"^email-smtp(-fips)?\.[a-z0-9-]+\.amazonaws\.com\.?$"), AMAZON_SES),
    (re.compile(r"^smtp\.sendgrid\.net\.?$"), SENDGRID),
)
ANYMAIL_BACKENDS = "anymail.backends."


def smtp_provider(host: str) -> str:
    """The key of mail handed to the SMTP server `host`: an ESP's relay is that ESP."""
    name = (host or "").strip().lower()
    for pattern, key in SMTP_RELAYS:
        if pattern.match(name):
            return key
    return SMTP


def provider_key(backend: BaseEmailBackend) -> str:
    """The key of what `backend` hands a message to (see the module's docstring)."""
    module = type(backend).__module__
    if module.startswith(ANYMAIL_BACKENDS):
        return module.removeprefix(ANYMAIL_BACKENDS).partition(".")[0]
    if isinstance(backend, DjangoSMTPBackend):
        return settings_smtp_provider(backend.host)
    return module.rpartition(".")[2]


def settings_smtp_provider(host: str) -> str:
    """The key of mail handed to the settings' SMTP server: `EMAIL_SMTP_PROVIDER` when set
    (a local MTA or proxy that relays to an ESP), else from its host."""
    from django.conf import settings

    return (getattr(settings, "EMAIL_SMTP_PROVIDER", "") or "").strip().lower() or smtp_provider(host)


def configured_provider_keys() -> set[str]:
    """The keys the configured `EMAIL_BACKEND` may record, read without sending: those the
    backend class names itself (`provider_keys()`, as `DatabaseSMTPBackend` does for its
    usable servers), else its own."""
    from django.conf import settings
    from django.utils.module_loading import import_string

    backend_class = import_string(settings.EMAIL_BACKEND)
    own_keys = getattr(backend_class, "provider_keys", None)
    if callable(own_keys):
        return set(own_keys())
    module = backend_class.__module__
    if module.startswith(ANYMAIL_BACKENDS):
        return {module.removeprefix(ANYMAIL_BACKENDS).partition(".")[0]}
    if issubclass(backend_class, DjangoSMTPBackend):
        return {settings_smtp_provider(settings.EMAIL_HOST)}
    return {module.rpartition(".")[2]}


__all__ = ["AMAZON_SES", "SENDGRID", "SIMULATOR", "SMTP", "configured_provider_keys", "provider_key", "smtp_provider"]
