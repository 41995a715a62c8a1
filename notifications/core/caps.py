"""Caps per provider, held across every process and host of a deployment (issue 21).

A relay or an ESP sets limits of its own: Office 365 takes 3 connections at a time from a
sender, SES 14 messages a second by default. However many workers run, those limits must hold,
so the count lives where every process sees it:

- **Connection slots** (`acquire_slot`): at most `limit` holders of a provider's slots at once.
  A slot is a *lease*: it lapses `lease_seconds` after it was taken or last renewed (`Slot.renew`),
  so a worker killed while holding one never keeps it for good; the others take it once the
  lease has run out.
- **Messages per second** (`take_rate`): at most `per_second` grants in any one-second window (a
  sliding window of the grant times, not fixed buckets: two buckets' edges would let twice the
  rate through across them). A caller held back is told how long to wait, never refused: a
  message that waits for a cap counts no attempt and never fails for it.

Where they are held: in Redis (`core.shared_redis`, by default the Celery broker when it is
Redis), each check one Lua script run atomically, with Redis's own clock, so hosts whose clocks
differ agree. Without Redis (the embedded default: eager mode, one process) they are held within
the process, with threading primitives. When Redis does not answer, a caller is told to wait
(`STORE_DOWN_WAIT_SECONDS`), never let through: a cap that silently stopped holding would let a
relay see more than it takes, while a wait costs nothing but time.

PostgreSQL was considered for deployments without Redis. Session advisory locks free
themselves with the holder's connection (a lease for free), but a slot would pin one database
connection per message in flight, Django closes and reopens connections under us
(`CONN_MAX_AGE`, `close_old_connections`), which would drop a slot silently, and a sliding-window
rate needs a table and a write per message on the database the drain already keeps busy. The
broker of every multi-process deployment we document is Redis, so Redis it is.
"""
from __future__ import annotations

import logging
import math
import os
import random
import threading
import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field

import redis

from . import shared_redis

logger = logging.getLogger(__name__)

# How long a caller is told to wait when the shared store does not answer.
STORE_DOWN_WAIT_SECONDS = 1.0
# The longest one sleep of a caller waiting for a slot, between two tries: a slot freed by its
# holder (not by its lease running out) is seen within this.
SLOT_POLL_SECONDS = 0.02
_random = random.Random()


class _Store:
    """Where caps are counted. Times returned are seconds to wait (0: go)."""

    def try_slot(self, key: str, *, limit: int, lease_seconds: float, token: str) -> float:
        raise NotImplementedError

    def renew_slot(self, key: str, *, lease_seconds: float, token: str) -> bool:
        raise NotImplementedError

    def release_slot(self, key: str, *, token: str) -> None:
        raise NotImplementedError

    def try_rate(self, key: str, *, limit: int, window_seconds: float, token: str, wanted: int = 1) -> tuple[int, float]:
        """Up to `wanted` grants: (how many were taken, seconds until the next one may be)."""
        raise NotImplementedError

    def holders(self, key: str) -> int:
        raise NotImplementedError

    def wait_for_release(self, key: str, seconds: float) -> None:
        time.sleep(seconds)


@dataclass
class Slot:
    """One held connection slot of a provider; a context manager that releases it on exit.

    Renew it (`renew`) more often than `lease_seconds` while the connection stays open: a slot
    whose lease ran out may be taken by another process, and `renew` then answers False, so its
    holder knows to close the connection rather than exceed the cap.
    """

    provider_key: str
    lease_seconds: float
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    store: _Store | None = None  # None: no cap, nothing held
    released: bool = False
    renewed_at: float = field(default_factory=time.monotonic)

    def renew(self) -> bool:
        """Extend the lease by `lease_seconds` from now; False when it had already lapsed."""
        if self.store is None:
            return not self.released
        if self.released:
            return False
        try:
            renewed = self.store.renew_slot(_slots_key(self.provider_key), lease_seconds=self.lease_seconds,
                                            token=self.token)
        except redis.RedisError as exc:
            logger.warning("Could not renew a connection slot of %s: %s", self.provider_key, exc)
            return False
        if renewed:
            self.renewed_at = time.monotonic()
        return renewed

    def keep(self) -> bool:
        """Renew the lease once half of it has passed, else nothing (no round trip): call it before
        each message sent over the slot's connection. False: the slot is lost, close the connection."""
        if time.monotonic() - self.renewed_at < self.lease_seconds / 2:
            return not self.released
        return self.renew()

    def release(self) -> None:
        """Give the slot back at once (idempotent); a lapsed lease needs no release."""
        if self.released:
            return
        self.released = True
        if self.store is None:
            return
        try:
            self.store.release_slot(_slots_key(self.provider_key), token=self.token)
        except redis.RedisError as exc:  # it lapses with its lease
            logger.warning("Could not release a connection slot of %s (it lapses with its lease): %s",
                           self.provider_key, exc)

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()


def try_slot(provider_key: str, *, limit: int | None, lease_seconds: float) -> Slot | float:
    """Take one of `provider_key`'s `limit` connection slots now, or say how long to wait.

    Returns the `Slot`, or the seconds until the earliest held lease runs out (a holder may
    release sooner). `limit` None or 0: no cap, a slot that holds nothing.
    """
    if not limit or limit <= 0:
        return Slot(provider_key, lease_seconds)
    _check_lease(lease_seconds)
    store = _store()
    slot = Slot(provider_key, lease_seconds, store=store)
    try:
        wait = store.try_slot(_slots_key(provider_key), limit=int(limit), lease_seconds=lease_seconds,
                              token=slot.token)
    except redis.RedisError as exc:
        logger.warning("The caps store does not answer (%s): %s waits for a connection slot.", exc, provider_key)
        return STORE_DOWN_WAIT_SECONDS
    return slot if wait <= 0 else wait


def acquire_slot(provider_key: str, *, limit: int | None, lease_seconds: float, timeout: float = 0.0) -> Slot | None:
    """Take one of `provider_key`'s `limit` connection slots, waiting up to `timeout` seconds.

    None when none came free in time: the caller keeps its message for later (no attempt is
    counted). Use the slot as a context manager, or `release()` it.
    """
    deadline = time.monotonic() + max(0.0, timeout)
    store = _store() if limit else None
    while True:
        taken = try_slot(provider_key, limit=limit, lease_seconds=lease_seconds)
        if isinstance(taken, Slot):
            return taken
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        pause = min(taken, left, SLOT_POLL_SECONDS * (0.5 + _random.random()))
        if store is not None:
            store.wait_for_release(_slots_key(provider_key), pause)
        else:
            time.sleep(pause)


def take_rate(provider_key: str, *, per_second: float | None) -> float:
    """Take one of `provider_key`'s grants of this second: 0 when taken (go), else the seconds to
    wait before asking again (nothing was taken). `per_second` None or 0: no cap.

    A rate below one a second is one grant per `1 / per_second` seconds.
    """
    if not per_second or per_second <= 0:
        return 0.0
    granted, wait = take_rates(provider_key, per_second=per_second, wanted=1)
    return 0.0 if granted else wait


def take_rates(provider_key: str, *, per_second: float | None, wanted: int) -> tuple[int, float]:
    """Take up to `wanted` of `provider_key`'s grants in one round trip (a sender with a batch
    in hand): (how many were taken, seconds to wait before asking for more; 0 if all came)."""
    if not per_second or per_second <= 0:
        return wanted, 0.0
    if wanted <= 0:
        return 0, 0.0
    limit, window = rate_window(per_second)
    try:
        return _store().try_rate(_rate_key(provider_key), limit=limit, window_seconds=window,
                                 token=uuid.uuid4().hex, wanted=wanted)
    except redis.RedisError as exc:
        logger.warning("The caps store does not answer (%s): %s waits for its rate.", exc, provider_key)
        return 0, STORE_DOWN_WAIT_SECONDS


def wait_for_rate(provider_key: str, *, per_second: float | None, timeout: float) -> bool:
    """Take a grant of `provider_key`'s rate, sleeping as told up to `timeout` seconds; False if
    none came in time (the caller keeps its message for later)."""
    deadline = time.monotonic() + max(0.0, timeout)
    while True:
        wait = take_rate(provider_key, per_second=per_second)
        if wait <= 0:
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(wait, left))


def rate_window(per_second: float) -> tuple[int, float]:
    """`per_second` as (grants, window seconds): 20/s is 20 per 1 s; 0.5/s is 1 per 2 s."""
    limit = max(1, math.floor(per_second))
    return limit, limit / per_second


def slot_holders(provider_key: str) -> int:
    """How many leases of `provider_key`'s slots are held now (for an operator, and tests)."""
    return _store().holders(_slots_key(provider_key))


def _check_lease(lease_seconds: float) -> None:
    if not lease_seconds or lease_seconds <= 0:
        raise ValueError("lease_seconds must be positive: a slot that never lapses outlives a killed holder")


def _slots_key(provider_key: str) -> str:
    return f"notifications:cap:{{{provider_key}}}:slots"


def _rate_key(provider_key: str) -> str:
    return f"notifications:cap:{{{provider_key}}}:rate"


# --- Redis --------------------------------------------------------------------------------------

# KEYS[1] the slots (token -> lease end, ms on Redis's clock). ARGV: limit, lease ms, token.
# Lapsed leases are dropped first. Returns 0 when taken, else the ms until the earliest lease ends.
_TRY_SLOT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + lease, ARGV[3])
  if redis.call('PTTL', KEYS[1]) < lease then redis.call('PEXPIRE', KEYS[1], lease + 1000) end
  return 0
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(first[2]) - now)
"""

# Extend a lease still held; 0 when it lapsed (or was never held).
_RENEW_SLOT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], 'XX', now + lease, ARGV[2])
if redis.call('PTTL', KEYS[1]) < lease then redis.call('PEXPIRE', KEYS[1], lease + 1000) end
return 1
"""

# KEYS[1] the grants of the window (token -> grant time, µs on Redis's clock). ARGV: limit,
# window µs, token, wanted. A grant stays in the window for the window's whole length, both
# ends included, so no closed window of that length ever holds more than `limit`. Returns
# {granted, µs until the oldest grant leaves the window (0 when all wanted were granted)}.
_TRY_RATE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[2])
local wanted = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - window))
local granted = math.min(wanted, math.max(0, tonumber(ARGV[1]) - redis.call('ZCARD', KEYS[1])))
for i = 1, granted do
  redis.call('ZADD', KEYS[1], now, ARGV[3] .. ':' .. i)
end
if granted > 0 then redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000) end
if granted == wanted then return {granted, 0} end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {granted, math.max(1, tonumber(oldest[2]) + window - now + 1)}
"""

_HOLDERS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
"""


class RedisStore(_Store):
    """Caps counted in Redis, each check one atomic script on Redis's clock."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._try_slot = client.register_script(_TRY_SLOT)
        self._renew_slot = client.register_script(_RENEW_SLOT)
        self._try_rate = client.register_script(_TRY_RATE)
        self._holders = client.register_script(_HOLDERS)

    def try_slot(self, key: str, *, limit: int, lease_seconds: float, token: str) -> float:
        wait_ms = self._try_slot(keys=[key], args=[limit, max(1, int(lease_seconds * 1000)), token])
        return int(wait_ms) / 1000

    def renew_slot(self, key: str, *, lease_seconds: float, token: str) -> bool:
        return bool(self._renew_slot(keys=[key], args=[max(1, int(lease_seconds * 1000)), token]))

    def release_slot(self, key: str, *, token: str) -> None:
        self.client.zrem(key, token)

    def try_rate(self, key: str, *, limit: int, window_seconds: float, token: str, wanted: int = 1) -> tuple[int, float]:
        granted, wait_us = self._try_rate(keys=[key], args=[limit, max(1, int(window_seconds * 1_000_000)), token,
                                                            wanted])
        return int(granted), int(wait_us) / 1_000_000

    def holders(self, key: str) -> int:
        return int(self._holders(keys=[key]))


# --- Within one process ---------------------------------------------------------------------------


class LocalStore(_Store):
    """Caps counted within this process (no shared store): the same rules, on the monotonic clock."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._slots: dict[str, dict[str, float]] = defaultdict(dict)  # key -> token -> lease end
        self._grants: dict[str, deque[float]] = defaultdict(deque)  # key -> grant times, oldest first

    def try_slot(self, key: str, *, limit: int, lease_seconds: float, token: str) -> float:
        with self._changed:
            now = time.monotonic()
            held = self._live(key, now)
            if len(held) < limit:
                held[token] = now + lease_seconds
                return 0.0
            return max(0.001, min(held.values()) - now)

    def renew_slot(self, key: str, *, lease_seconds: float, token: str) -> bool:
        with self._changed:
            now = time.monotonic()
            held = self._live(key, now)
            if token not in held:
                return False
            held[token] = now + lease_seconds
            return True

    def release_slot(self, key: str, *, token: str) -> None:
        with self._changed:
            self._slots[key].pop(token, None)
            self._changed.notify_all()

    def try_rate(self, key: str, *, limit: int, window_seconds: float, token: str, wanted: int = 1) -> tuple[int, float]:
        with self._changed:
            now = time.monotonic()
            grants = self._grants[key]
            while grants and grants[0] < now - window_seconds:
                grants.popleft()
            granted = min(wanted, max(0, limit - len(grants)))
            grants.extend([now] * granted)
            if granted == wanted:
                return granted, 0.0
            return granted, max(0.000001, grants[0] + window_seconds - now + 0.000001)

    def holders(self, key: str) -> int:
        with self._changed:
            return len(self._live(key, time.monotonic()))

    def wait_for_release(self, key: str, seconds: float) -> None:
        with self._changed:
            self._changed.wait(seconds)

    def _live(self, key: str, now: float) -> dict[str, float]:
        held = self._slots[key]
        for token in [token for token, end in held.items() if end <= now]:
            del held[token]
        return held


_local = LocalStore()


def _store() -> _Store:
    client = shared_redis.client()
    if client is None:
        return _local
    return _redis_store(client)


_redis_stores: dict[int, RedisStore] = {}


def _redis_store(client: redis.Redis) -> RedisStore:
    store = _redis_stores.get(id(client))
    if store is None or store.client is not client:
        store = _redis_stores[id(client)] = RedisStore(client)
    return store


def forget_local_state() -> None:
    """Forget the caps held within this process (tests; a forked child, whose parent's holders
    are not its own and whose lock a parent's thread may have held at the fork)."""
    global _local
    _local = LocalStore()


os.register_at_fork(after_in_child=forget_local_state)


__all__ = [
    "LocalStore", "RedisStore", "Slot", "acquire_slot", "forget_local_state", "rate_window", "slot_holders",
    "take_rate", "take_rates", "try_slot", "wait_for_rate",
]
