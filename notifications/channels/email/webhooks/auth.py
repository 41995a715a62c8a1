"""Who may call a provider's webhook routes: HTTP basic auth with that provider's secret.

Each provider has its own secrets (`EMAIL_WEBHOOK_SECRET_AMAZON_SES`,
`EMAIL_WEBHOOK_SECRET_SENDGRID`): the secret SNS carries in its subscription URL opens only
the SES routes, never SendGrid's. The shared `ANYMAIL_WEBHOOK_SECRET` (anymail's
`WEBHOOK_SECRET`) of earlier releases is still accepted, for one release, on the routes of a
provider that has no secret of its own, so an upgrade loses no event; `manage.py check`
warns while it is set (`notifications.W032`).

Several secrets are accepted at once so they can rotate. Outside development a provider
with no secret refuses every request: anymail only warns, and an open webhook lets anyone
mark mail delivered or bounced. Amazon SNS sends credentials only after a 401 challenge, so
a request without them gets one.

`refusal()` is the one place a webhook request's credentials are checked.

A wrong password counts against the client's address (`notifications.access.lockout`, scope
`webhook`); past `AUTH_LOCKOUT_WEBHOOK_FAILURES` the address gets a JSON 429 with
`Retry-After`. A request whose provider signature verifies (`signed`) is never refused nor
counted: SNS retries only 5xx, so refusing the provider itself would lose its events.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import cache

from anymail.utils import get_request_basic_auth
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.utils.crypto import constant_time_compare
from django.utils.translation import gettext as _

from notifications.access import lockout

REALM = 'Basic realm="notifications webhooks"'
SECRET_SETTINGS = {"amazon_ses": "EMAIL_WEBHOOK_SECRET_AMAZON_SES", "sendgrid": "EMAIL_WEBHOOK_SECRET_SENDGRID"}
LEGACY_SETTING = "ANYMAIL_WEBHOOK_SECRET"


def _secrets(value) -> list[str]:
    """A secrets setting (a string, or a list of them) as its non-empty strings."""
    values = [value] if isinstance(value, str) else list(value or [])
    return [secret for secret in values if secret]


def legacy_secrets() -> list[str]:
    """The shared `user:password` strings of earlier releases (anymail's `WEBHOOK_SECRET`)."""
    return _secrets((getattr(settings, "ANYMAIL", None) or {}).get("WEBHOOK_SECRET"))


def own_secrets(provider: str) -> list[str]:
    """The provider's own secrets (its `EMAIL_WEBHOOK_SECRET_<PROVIDER>` setting)."""
    name = SECRET_SETTINGS.get(provider)
    return _secrets(getattr(settings, name, None) if name else None)


def setting_name(provider: str) -> str:
    """The setting that holds the secrets accepted on `provider`'s routes now."""
    if own_secrets(provider) or not legacy_secrets():
        return SECRET_SETTINGS.get(provider, LEGACY_SETTING)
    return LEGACY_SETTING


def configured_secrets(provider: str) -> list[str]:
    """The accepted `user:password` strings on `provider`'s routes: its own, else the legacy shared ones."""
    return own_secrets(provider) or legacy_secrets()


def refusal(request: HttpRequest, *, provider: str,
            signed: Callable[[], bool] = lambda: False) -> JsonResponse | None:
    """The answer refusing `request` on `provider`'s route, or None when it carries an accepted secret.

    `signed` says whether the request's provider signature verifies; it is asked only when
    the request would be throttled or counted, since verifying may cost a certificate fetch.
    """
    signed = cache(signed)
    secrets = configured_secrets(provider)
    name = setting_name(provider)
    if not secrets:
        if settings.ENVIRONMENT == "development":
            return None
        return _answer(_("Webhooks are refused: %(setting)s is not set (required outside development).")
                       % {"setting": name}, code="webhook_secret_not_set", status=403)
    ip = lockout.client_ip(request)
    wait = lockout.retry_after(scope=lockout.WEBHOOK, ip=ip)
    if wait is not None and not signed():
        response = _answer(_("Too many failed authentications from your address: try again later."),
                           code="too_many_failed_authentications", status=429)
        response["Retry-After"] = str(wait)
        return response
    given = get_request_basic_auth(request)
    if given is not None and any(constant_time_compare(given, secret) for secret in secrets):
        return None
    if given is not None and not signed():  # SNS's first request, without credentials, is no guess
        lockout.record_failure(scope=lockout.WEBHOOK, ip=ip)
    response = _answer(_("Authentication required: HTTP basic auth with the webhook secret (%(setting)s).")
                       % {"setting": name}, code="webhook_auth_required", status=401)
    response["WWW-Authenticate"] = REALM
    return response


def _answer(message: str, *, code: str, status: int) -> JsonResponse:
    return JsonResponse({"detail": message, "codes": {"detail": code}}, status=status)
