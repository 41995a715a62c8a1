"""Per-client request rates (DRF's throttles), keyed by API key, else user, else address."""
from collections.abc import Mapping

from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext as _
from rest_framework.exceptions import Throttled
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
    """The `send` rate, counted in recipients rather than requests.

    A request costs one per address it names (`recipient_count`), so a batch of 1,000
    addresses costs what 1,000 single sends cost, and a send to 50 what 50 sends to one.
    It passes only when its whole cost fits in what the window has left: a refused (429)
    request reaches no view and writes nothing. A request costing more than the whole
    rate could never pass, and is told so without a `Retry-After`.
    """

    scope = "send"
    # Entries are (time, cost), not DRF's bare times: a key of its own, so counters of the
    # other shape left in a shared cache are never read as these.
    cache_format = "throttle_%(scope)s_recipients_%(ident)s"

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        self.cost = recipient_count(request.data)
        if self.cost > self.num_requests:
            raise Throttled(
                detail=_(
                    "This request names %(cost)s recipients; the send rate allows %(rate)s "
                    "(API_SEND_THROTTLE_RATE). Split it into smaller requests."
                ) % {"cost": self.cost, "rate": self.rate},
                code="request_exceeds_send_rate",
            )
        self.now = self.timer()
        self.history = [(at, cost) for at, cost in self.cache.get(self.key, []) if at > self.now - self.duration]
        if sum(cost for _, cost in self.history) + self.cost > self.num_requests:
            return False
        self.history.insert(0, (self.now, self.cost))
        self.cache.set(self.key, self.history, self.duration)
        return True

    def wait(self) -> float:
        """Seconds until enough of the window's earlier cost has expired for this request."""
        excess = sum(cost for _, cost in self.history) + self.cost - self.num_requests
        for at, cost in reversed(self.history):  # oldest first
            excess -= cost
            if excess <= 0:
                return max(0.0, at + self.duration - self.now)
        return float(self.duration)


def recipient_count(data: object) -> int:
    """The addresses a send request names: `to`, `cc` and `bcc`, or every batch item's `to`.

    Counted on the body as sent, before any validation (the view has not run yet): each
    list item or comma-separated part is one. At least 1, so every request costs something.
    """
    if not isinstance(data, Mapping):
        return 1
    items = data.get("items")
    if isinstance(items, list):
        count = sum(_addresses(item.get("to")) for item in items if isinstance(item, Mapping))
    else:
        count = sum(_addresses(data.get(name)) for name in ("to", "cc", "bcc"))
    return max(1, count)


def _addresses(value: object) -> int:
    if isinstance(value, str):
        return sum(1 for part in value.split(",") if part.strip())
    if isinstance(value, (list, tuple)):
        return len(value)
    return 0
