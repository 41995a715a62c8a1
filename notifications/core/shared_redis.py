"""The Redis that holds what every process of a deployment must agree on (caps, health state).

`OUTBOX_SHARED_STATE_URL` names it; by default it is the Celery broker when that is Redis, so a
deployment that runs Redis needs no new service. Empty: there is no shared store, and each
caller falls back to state held within its own process (the embedded default, one process).
"""
from __future__ import annotations

import functools

import redis
from django.conf import settings

# Short: a caller on the sending path must never wait long on a store that went away.
SOCKET_TIMEOUT_SECONDS = 0.5


def client() -> redis.Redis | None:
    """A client of the shared Redis, or None when none is configured."""
    url = getattr(settings, "OUTBOX_SHARED_STATE_URL", "") or ""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return None
    return _client(url)


@functools.lru_cache(maxsize=8)
def _client(url: str) -> redis.Redis:
    # redis-py's pool notices a fork (its pid changed) and opens new connections in the child.
    return redis.Redis.from_url(url, socket_timeout=SOCKET_TIMEOUT_SECONDS,
                                socket_connect_timeout=SOCKET_TIMEOUT_SECONDS)
