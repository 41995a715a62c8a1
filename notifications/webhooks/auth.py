"""HTTP basic auth on every webhook route, with `ANYMAIL_WEBHOOK_SECRET`.

Several secrets are accepted at once so they can rotate (a list in anymail's
`WEBHOOK_SECRET`; comma-separated in the environment). Outside development a webhook with no
secret set refuses every request: anymail only warns, and an open webhook lets anyone mark
mail delivered or bounced. Amazon SNS sends credentials only after a 401 challenge, so a
request without them gets one.
"""
from __future__ import annotations

from anymail.utils import get_request_basic_auth
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.utils.crypto import constant_time_compare
from django.utils.translation import gettext as _

REALM = 'Basic realm="notifications webhooks"'


def configured_secrets() -> list[str]:
    """The accepted `user:password` strings (anymail's `WEBHOOK_SECRET`, a string or a list)."""
    value = (getattr(settings, "ANYMAIL", None) or {}).get("WEBHOOK_SECRET") or []
    values = [value] if isinstance(value, str) else list(value)
    return [secret for secret in values if secret]


def refusal(request: HttpRequest) -> JsonResponse | None:
    """The answer refusing `request`, or None when it carries an accepted secret."""
    secrets = configured_secrets()
    if not secrets:
        if settings.ENVIRONMENT == "development":
            return None  # anymail warns that the webhook is open
        return JsonResponse({"detail": _(
            "Webhooks are refused: ANYMAIL_WEBHOOK_SECRET is not set (required outside development)."
        )}, status=403)
    given = get_request_basic_auth(request)
    if given is not None and any(constant_time_compare(given, secret) for secret in secrets):
        return None
    response = JsonResponse({"detail": _(
        "Authentication required: HTTP basic auth with the webhook secret (ANYMAIL_WEBHOOK_SECRET)."
    )}, status=401)
    response["WWW-Authenticate"] = REALM
    return response
