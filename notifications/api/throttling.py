"""Per-client request rates (DRF's throttles), keyed by API key, else user, else address."""
from django.core.exceptions import ImproperlyConfigured
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle


class ClientRateThrottle(SimpleRateThrottle):
    """The `api` rate for every request; views may add a narrower scope."""

    scope = "api"

    def get_rate(self) -> str | None:
        # DRF copies the rates at import; read them per request so a settings change applies.
        try:
            return api_settings.DEFAULT_THROTTLE_RATES[self.scope]
        except KeyError:
            raise ImproperlyConfigured(
                f"REST_FRAMEWORK['DEFAULT_THROTTLE_RATES'] needs a rate for the {self.scope!r} scope."
            ) from None

    def get_cache_key(self, request, view):
        if request.auth is not None and hasattr(request.auth, "pk"):
            ident = f"key:{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class SendRateThrottle(ClientRateThrottle):
    scope = "send"
