"""Bearer API keys. A key acts with its user's permissions; `request.auth` is the key.

A wrong key counts against the client's address (`notifications.access.lockout`, scope `api`):
past `AUTH_LOCKOUT_API_FAILURES` every key from there, right or wrong, is a 429 until the
lockout ends, so keys cannot be guessed at the speed of the server.
"""
from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from notifications.access import lockout
from notifications.models import APIKey
from notifications.models.access import hash_key

#: `last_used_at` is refreshed at most this often, so a busy key costs no write per request.
TOUCH_INTERVAL = timedelta(minutes=1)


class APIKeyAuthentication(BaseAuthentication):
    """`Authorization: Bearer <key>`; keys are looked up by their SHA-256 digest."""

    keyword = "bearer"

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts:
            return None
        ip = lockout.client_ip(request)
        wait = lockout.retry_after(scope=lockout.API, ip=ip)
        if wait is not None:
            raise exceptions.Throttled(wait=wait, detail=_(
                "Too many failed authentications from your address: try again later."
            ), code="too_many_failed_authentications")
        try:
            return self._authenticate(parts)
        except exceptions.AuthenticationFailed:
            lockout.record_failure(scope=lockout.API, ip=ip)
            raise

    def _authenticate(self, parts: list[bytes]):
        if parts[0].lower() != self.keyword.encode():
            # Another scheme (`Token ...`, `Basic ...`) is never ours: say which one is.
            raise exceptions.AuthenticationFailed(
                _("Unsupported Authorization scheme: send the header 'Authorization: Bearer <key>'."),
                code="unsupported_authorization_scheme",
            )
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                _("Invalid Authorization header: expected 'Authorization: Bearer <key>'."),
                code="malformed_authorization",
            )
        try:
            raw = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(
                _("Invalid API key: expected 'Authorization: Bearer <key>' with an active key."),
                code="invalid_api_key",
            ) from None
        key = APIKey.objects.active().select_related("user").filter(key_hash=hash_key(raw)).first()
        if key is None:
            raise exceptions.AuthenticationFailed(
                _("Invalid or revoked API key: expected 'Authorization: Bearer <key>' with an active key."),
                code="invalid_api_key",
            )
        now = timezone.now()
        if key.last_used_at is None or now - key.last_used_at > TOUCH_INTERVAL:
            APIKey.objects.filter(pk=key.pk).update(last_used_at=now)
        return key.user, key

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class APIKeyScheme(OpenApiAuthenticationExtension):
    target_class = APIKeyAuthentication
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": gettext_lazy("An API key from `python manage.py create_api_key <username>`."),
        }
