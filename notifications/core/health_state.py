"""Health state shared by every process of a deployment: who is resting after a failure (issue 21).

Two things were learnt per process, so each worker process found a dead relay dead on its own:

- the failover cooldown of a DB-configured SMTP server (`backends.database_smtp`): a primary
  that times out rests behind the others, so it costs its timeout once, not on every message;
- a lane's rest after an outage (`services.outbox`), and how many outages in a row it had
  (the rest grows with them, `retries.outage_delay`).

Here they live in the shared Redis (`core.shared_redis`) when there is one: a rest is a key
that expires with it (its time left read with PTTL, on Redis's clock, so hosts agree), outages
in a row a counter. Without Redis, and while Redis does not answer, they live within the
process: a store that went away costs each process one discovery of its own, as before,
never a message. After a call Redis did not answer, this process leaves it alone for
`STORE_RETRY_SECONDS`, so a drain never waits on a dead store call after call.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Iterable

import redis

from . import shared_redis

logger = logging.getLogger(__name__)

# Outages in a row are forgotten this long after the last one, even without a success between.
OUTAGE_MEMORY_SECONDS = 24 * 3600
# After a call the shared store did not answer, it is not asked again for this long.
STORE_RETRY_SECONDS = 5.0
_store_down_until = 0.0


def rest(key: str, *, seconds: float) -> None:
    """`key` rests for `seconds` from now (a later call replaces the end)."""
    if seconds <= 0:
        return
    client = _shared()
    if client is not None:
        try:
            client.set(_key(key), "1", px=max(1, int(seconds * 1000)))
            return
        except redis.RedisError as exc:
            _store_down(exc)
    _local.rest(key, seconds)


def rest_left(key: str) -> float:
    """Seconds left of `key`'s rest; 0 when it is not resting."""
    return resting([key]).get(key, 0.0)


def resting(keys: Iterable[str]) -> dict[str, float]:
    """Of `keys`, those resting now, with the seconds left of each (one round trip)."""
    keys = list(keys)
    if not keys:
        return {}
    client = _shared()
    if client is not None:
        try:
            with client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.pttl(_key(key))
                left = pipe.execute()
            return {key: ms / 1000 for key, ms in zip(keys, left, strict=True) if ms > 0}
        except redis.RedisError as exc:
            _store_down(exc)
    return _local.resting(keys)


def end_rest(key: str) -> None:
    """`key` works again (it answered, or an operator changed it): its rest ends at once."""
    client = _shared()
    if client is not None:
        try:
            client.delete(_key(key))
        except redis.RedisError as exc:
            _store_down(exc)
    _local.end_rest(key)


def count_outage(key: str) -> int:
    """One more outage of `key` in a row; returns how many so far."""
    client = _shared()
    if client is not None:
        try:
            with client.pipeline(transaction=True) as pipe:
                pipe.incr(_key(f"outages:{key}"))
                pipe.expire(_key(f"outages:{key}"), OUTAGE_MEMORY_SECONDS)
                count, _ = pipe.execute()
            return int(count)
        except redis.RedisError as exc:
            _store_down(exc)
    return _local.count_outage(key)


def clear_outages(key: str) -> None:
    """`key` worked: its next outage is the first in a row again."""
    client = _shared()
    if client is not None:
        try:
            client.delete(_key(f"outages:{key}"))
        except redis.RedisError as exc:
            _store_down(exc)
    _local.clear_outages(key)


def smtp_server_key(pk: object, fingerprint: tuple) -> str:
    """The key of a DB-configured SMTP server's rest: its row and its connection settings (hashed,
    since they include the encrypted password), so an edit of those ends the rest at once."""
    digest = hashlib.sha256(repr(fingerprint).encode()).hexdigest()[:16]
    return f"smtp-server:{pk}:{digest}"


def lane_key(lane: str) -> str:
    return f"lane:{lane}"


def _key(key: str) -> str:
    return f"notifications:health:{key}"


def _shared():
    """The shared Redis, unless there is none or it did not answer a moment ago."""
    if time.monotonic() < _store_down_until:
        return None
    return shared_redis.client()


def _store_down(exc: BaseException) -> None:
    global _store_down_until
    _store_down_until = time.monotonic() + STORE_RETRY_SECONDS
    logger.warning("The shared health state does not answer (%s): this process keeps its own for %s s.",
                   exc, STORE_RETRY_SECONDS)


class _LocalState:
    """The same state within one process, on the monotonic clock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rests: dict[str, float] = {}  # key -> monotonic end
        self.outages: dict[str, int] = {}

    def rest(self, key: str, seconds: float) -> None:
        with self.lock:
            self.rests[key] = time.monotonic() + seconds

    def resting(self, keys: list[str]) -> dict[str, float]:
        now = time.monotonic()
        with self.lock:
            self.rests = {key: end for key, end in self.rests.items() if end > now}
            return {key: self.rests[key] - now for key in keys if key in self.rests}

    def end_rest(self, key: str) -> None:
        with self.lock:
            self.rests.pop(key, None)

    def count_outage(self, key: str) -> int:
        with self.lock:
            self.outages[key] = self.outages.get(key, 0) + 1
            return self.outages[key]

    def clear_outages(self, key: str) -> None:
        with self.lock:
            self.outages.pop(key, None)


_local = _LocalState()


def forget_local_state() -> None:
    """Forget what this process alone knows (tests; a forked child). The shared state stays."""
    global _local, _store_down_until
    _local = _LocalState()
    _store_down_until = 0.0


os.register_at_fork(after_in_child=forget_local_state)


__all__ = [
    "clear_outages", "count_outage", "end_rest", "forget_local_state", "lane_key", "rest", "rest_left",
    "resting", "smtp_server_key",
]
