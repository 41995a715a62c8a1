"""Throttling failed authentication: the admin login, API keys and webhook passwords.

Three scopes, each counted where a guess can be told apart, as django-axes counts logins:

- `login`: the admin login, per (username, client IP). Whoever guesses at `admin` from
  one address locks only that pair, so nobody can lock the real admin out from elsewhere.
- `api`: a wrong bearer key, per client IP (a key names no account to count it against).
- `webhook`: a wrong webhook password, per client IP. A request whose provider signature
  verifies (SNS, SendGrid's signed webhook) is never refused nor counted: the provider is
  not guessing, and a 4xx would drop its event for good.

`AUTH_LOCKOUT_<SCOPE>_FAILURES` failures within `AUTH_LOCKOUT_WINDOW_SECONDS` (counted from
the first) lock the pair or address for `AUTH_LOCKOUT_WINDOW_SECONDS` from the failure that
reached the limit: every attempt then, right or wrong, is a 429 with `Retry-After`, since
answering a right guess differently would keep the guessing going. Staff list and lift
lockouts with `manage.py unlock`, or on the admin's "Lockouts" page beside the API keys.

The client IP is `REMOTE_ADDR`, or, when that is a proxy listed in `AUTH_TRUSTED_PROXIES`,
the nearest address in `X-Forwarded-For` that is not one: the header's left part is
whatever the client wrote, so only the hops our own proxies appended are believed.

Counters live in Django's default cache, like the API's rate throttles (`CACHE_URL`:
Redis when several web processes serve), under a digest of the identity; the lockouts
themselves are also kept in one index entry, so staff can list them.
"""
from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import time
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured

LOGIN = "login"
API = "api"
WEBHOOK = "webhook"
#: Scope → the setting holding its number of failures.
LIMIT_SETTINGS = {
    LOGIN: "AUTH_LOCKOUT_LOGIN_FAILURES",
    API: "AUTH_LOCKOUT_API_FAILURES",
    WEBHOOK: "AUTH_LOCKOUT_WEBHOOK_FAILURES",
}
FORWARDED_FOR = "HTTP_X_FORWARDED_FOR"
PREFIX = "auth-lockout"
INDEX_KEY = f"{PREFIX}:index"

logger = logging.getLogger(__name__)


# --- Who is asking -------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    try:
        return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry.strip())
    except ValueError as exc:
        raise ImproperlyConfigured(f"AUTH_TRUSTED_PROXIES: {exc} (addresses or networks, comma-separated).") from None


def _is_trusted(address: str, networks) -> bool:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in networks)


def client_ip(request) -> str:
    """The address of the client behind our own proxies (see the module)."""
    remote = request.META.get("REMOTE_ADDR", "") or ""
    networks = _networks(tuple(settings.AUTH_TRUSTED_PROXIES))
    if not networks or not _is_trusted(remote, networks):
        return remote
    hops = [hop.strip() for hop in request.META.get(FORWARDED_FOR, "").split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, networks):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:  # not an address: our proxy passed garbage on, so it stands for the client
                return remote
    return hops[0] if hops else remote


# --- The counters --------------------------------------------------------------------------


@dataclass(frozen=True)
class Lockout:
    """A locked identity: the scope, the username (the login's only) and the address, and until when."""

    scope: str
    username: str
    ip: str
    until: float

    @property
    def seconds_left(self) -> int:
        return max(0, math.ceil(self.until - time.time()))

    def same(self, *, scope: str, ip: str, username: str = "") -> bool:
        return (self.scope, self.ip, self.username.casefold()) == (scope, ip, username.casefold())


def _key(scope: str, *, ip: str, username: str = "") -> str:
    # The username as the login form compares it, case folded: `Admin` and `admin` are one count.
    identity = f"{scope}\x00{username.casefold()}\x00{ip}"
    return f"{PREFIX}:{scope}:{hashlib.sha256(identity.encode()).hexdigest()}"


def _limit(scope: str) -> int:
    return int(getattr(settings, LIMIT_SETTINGS[scope]))


def retry_after(*, scope: str, ip: str, username: str = "") -> int | None:
    """Seconds until this identity may try again in `scope`, or None when it is not locked."""
    until = cache.get(_key(scope, ip=ip, username=username) + ":until")
    if until is None:
        return None
    left = until - time.time()
    return max(1, math.ceil(left)) if left > 0 else None


def record_failure(*, scope: str, ip: str, username: str = "") -> int:
    """Count one failed attempt; lock the identity when it reaches the scope's limit. Returns the count."""
    window = int(settings.AUTH_LOCKOUT_WINDOW_SECONDS)
    key = _key(scope, ip=ip, username=username)
    if cache.add(key, 1, window):
        count = 1
    else:
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr: a new window
            cache.set(key, 1, window)
            count = 1
    if count >= _limit(scope):
        until = time.time() + window
        cache.set(key + ":until", until, window)
        _remember(Lockout(scope=scope, username=username, ip=ip, until=until), window=window)
        logger.warning("authentication locked: scope=%s username=%r ip=%s for %ss after %s failures",
                       scope, username, ip, window, count)
    return count


def _remember(lockout: Lockout, *, window: int) -> None:
    """Keep the lockout in the index staff list (`manage.py unlock --list`); expired ones dropped."""
    now = time.time()
    index = [entry for entry in cache.get(INDEX_KEY, [])
             if entry.until > now and not entry.same(scope=lockout.scope, ip=lockout.ip, username=lockout.username)]
    cache.set(INDEX_KEY, [*index, lockout], window)


def current_lockouts() -> list[Lockout]:
    """The identities locked now, soonest to end first."""
    index = cache.get(INDEX_KEY, [])
    return sorted((entry for entry in index if retry_after(scope=entry.scope, ip=entry.ip, username=entry.username)),
                  key=lambda entry: entry.until)


def lift(*, scope: str, ip: str, username: str = "") -> bool:
    """Forget the identity's failures and lift its lockout; True when it was locked."""
    key = _key(scope, ip=ip, username=username)
    was_locked = retry_after(scope=scope, ip=ip, username=username) is not None
    cache.delete_many([key, key + ":until"])
    index = cache.get(INDEX_KEY, [])
    kept = [entry for entry in index if not entry.same(scope=scope, ip=ip, username=username)]
    if len(kept) != len(index):
        cache.set(INDEX_KEY, kept, int(settings.AUTH_LOCKOUT_WINDOW_SECONDS))
    return was_locked
