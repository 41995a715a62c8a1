"""Leases of claimed rows: a live drain keeps its claims, a dead one loses them in a lease.

A claimed row (`sending`) whose `updated_at` is older than `OUTBOX_LEASE_SECONDS` is
taken to belong to a worker that died, and the sweep puts it back to `queued`
(`lifecycle.release_expired_leases`). So that the lease can be short (a dead worker's mail
back in about a minute) without ever taking rows from a worker that is alive but slow (an
SMTP server holding DATA, a large batch), each process runs one keeper thread that renews,
every quarter of the lease, the lease of every row its running drains hold
(`lifecycle.renew_leases`). It runs beside the drains, so a send blocked for any time does
not stop it; only the process dying (or frozen for three quarters of a lease) does.

The keeper opens a database connection only to renew, and closes it after each renewal.
"""
from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from celery import current_app
from django.conf import settings
from django.db import connection

from notifications.core.outbox import lifecycle

logger = logging.getLogger(__name__)


class Held:
    """The rows one drain claimed (a set of ids); the keeper renews those still `sending`."""

    def __init__(self) -> None:
        self.ids: set = set()

    def add(self, ids: Iterable) -> None:
        ids = list(ids)
        with _lock:
            self.ids.update(ids)


_lock = threading.Lock()
_held: list[Held] = []
_keeper: threading.Thread | None = None
_stop = threading.Event()


def renew_every() -> float:
    """How often the keeper renews: a quarter of the lease."""
    return max(0.05, float(settings.OUTBOX_LEASE_SECONDS) / 4)


@contextmanager
def held() -> Iterator[Held]:
    """The rows a drain claims while inside: their lease renewed until it returns."""
    rows = Held()
    with _lock:
        _held.append(rows)
    if not current_app.conf.task_always_eager:  # eager (`make run`, tests): the caller's own drain
        _start_keeper()
    try:
        yield rows
    finally:
        with _lock:
            _held.remove(rows)


def renew_now() -> int:
    """Renew the lease of every row this process's drains hold now; how many were renewed."""
    with _lock:
        ids = {pk for rows in _held for pk in rows.ids}
    if not ids:
        return 0
    return lifecycle.renew_leases(ids)


def _start_keeper() -> None:
    global _keeper
    with _lock:
        if _keeper is not None and _keeper.is_alive():
            return
        _stop.clear()
        _keeper = threading.Thread(target=_keep, name="lease-keeper", daemon=True)
        _keeper.start()


def _keep() -> None:
    while not _stop.wait(renew_every()):
        try:
            renew_now()
        except Exception:  # noqa: BLE001 - a failed renewal is tried again at the next tick
            logger.warning("Renewing the lease of claimed messages failed; trying again in %.1f s.",
                           renew_every(), exc_info=True)
        finally:
            connection.close()  # this thread's own; reopened at the next renewal that needs it


def stop_keeper() -> None:
    """Stop this process's keeper thread (worker shutdown, tests); started again on the next drain."""
    global _keeper
    with _lock:
        keeper, _keeper = _keeper, None
    if keeper is not None:
        _stop.set()
        keeper.join(timeout=10)


def _forget_in_child() -> None:
    global _keeper, _lock, _held, _stop
    _keeper, _lock, _held, _stop = None, threading.Lock(), [], threading.Event()  # the parent's thread is not here


os.register_at_fork(after_in_child=_forget_in_child)
