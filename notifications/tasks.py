"""Celery tasks: thin wrappers that call a service. Published by name (`core.outbox.wakeups`)."""
from __future__ import annotations

from celery import shared_task
from celery.signals import worker_process_init, worker_process_shutdown, worker_shutdown
from django.db import close_old_connections

from notifications.core import channels
from notifications.core.outbox import leases
from notifications.core.outbox import drain
from notifications.core.outbox.sweep import sweep


@shared_task(name="notifications.drain_lane", ignore_result=True, bind=True)
def drain_lane(self, lane: str, woken_at: float | None = None) -> dict[str, int]:
    """Deliver the due messages of one lane (services.outbox); a late wake-up finds nothing.
    (`woken_at`: sent by releases before issue 17, still accepted from a broker's backlog, unused.)"""
    if not self.request.is_eager:
        # The connection outlives the task (CELERY_DB_REUSE_MAX); as Django does around a
        # request, drop it when it broke or passed DATABASE_CONN_MAX_AGE.
        close_old_connections()
    return drain.drain_lane(lane=lane)


@shared_task(name="notifications.sweep_stranded_messages", ignore_result=True)
def sweep_messages() -> dict:
    """Run by Celery beat every `OUTBOX_SWEEP_SECONDS`; see services.sweep."""
    return sweep().as_dict()


@worker_process_init.connect
def forget_inherited_state(**kwargs) -> None:
    """A forked child starts with no knowledge of the lanes: its parent's is not its own."""
    drain.forget_process_state()


@worker_process_shutdown.connect  # prefork children
@worker_shutdown.connect  # the worker itself: the solo and thread pools deliver there
def close_connections(**kwargs) -> None:
    """Say QUIT to the SMTP servers this worker process kept connections open to, close the
    outbox recorder's database connection and stop the lease keeper."""
    channels.close_all()
    drain.close_recorder()
    leases.stop_keeper()
