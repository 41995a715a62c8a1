"""HTTP basic auth on every webhook route, with `ANYMAIL_WEBHOOK_SECRET`.

Several secrets are accepted at once so they can rotate (a list in anymail's
`WEBHOOK_SECRET`; comma-separated in the environment). Outside development a webhook with no
secret set refuses every request: anymail only warns, and an open webhook lets anyone mark
mail delivered or bounced. Amazon SNS sends credentials only after a 401 challenge, so a
request without them gets one.

A wrong password counts against the client's address (`notifications.lockout`, scope
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

from notifications import lockout

REALM = 'Basic realm="notifications webhooks"'


def configured_secrets() -> list[str]:
    """The accepted `user:password` strings (anymail's `WEBHOOK_SECRET`, a string or a list)."""
    value = (getattr(settings, "ANYMAIL", None) or {}).get("WEBHOOK_SECRET") or []
    values = [value] if isinstance(value, str) else list(value)
    return [secret for secret in values if secret]


def refusal(request: HttpRequest, *, signed: Callable[[], bool] = lambda: False) -> JsonResponse | None:
    """The answer refusing `request`, or None when it carries an accepted secret.

    `signed` says whether the request's provider signature verifies; it is asked only when
    the request would be throttled or counted, since verifying may cost a certificate fetch.
    """
    signed = cache(signed)
    secrets = configured_secrets()
    if not secrets:
        if settings.ENVIRONMENT == "development":
            return None  # anymail warns that the webhook is open
        return JsonResponse({"detail": _(
            "Webhooks are refused: ANYMAIL_WEBHOOK_SECRET is not set (required outside development)."
        )}, status=403)
    ip = lockout.client_ip(request)
    wait = lockout.retry_after(scope=lockout.WEBHOOK, ip=ip)
    if wait is not None and not signed():
        response = JsonResponse({"detail": _("Too many failed authentications from your address: try again later."),
                                 "codes": {"detail": "too_many_failed_authentications"}}, status=429)
        response["Retry-After"] = str(wait)
        return response
    given = get_request_basic_auth(request)
    if given is not None and any(constant_time_compare(given, secret) for secret in secrets):
        return None
    if given is not None and not signed():  # SNS's first request, without credentials, is no guess
        lockout.record_failure(scope=lockout.WEBHOOK, ip=ip)
    response = JsonResponse({"detail": _(
        "Authentication required: HTTP basic auth with the webhook secret (ANYMAIL_WEBHOOK_SECRET)."
    )}, status=401)
    response["WWW-Authenticate"] = REALM
    return response
