"""Celery tasks: thin wrappers that take an id and call a service."""
from __future__ import annotations

from celery import shared_task
from celery.signals import worker_process_shutdown, worker_shutdown

from notifications.backends import connections
from notifications.models import EmailMessage
from notifications.services import delivery
from notifications.services.sweep import sweep_stranded_messages


@shared_task(name="notifications.deliver_message", acks_late=True, ignore_result=True)
def deliver_message(message_id: str) -> str:
    """Deliver one queued message; a duplicate or late task finds it claimed and skips."""
    return delivery.deliver(message_id)


@shared_task(name="notifications.sweep_stranded_messages", ignore_result=True)
def sweep() -> dict:
    """Run by Celery beat every minute (CELERY_BEAT_SCHEDULE); see services.sweep."""
    result = sweep_stranded_messages()
    return {"released": result.requeued_from_sending, "republished": result.republished}


def enqueue_delivery(message: EmailMessage) -> None:
    """Queue delivery on the message's lane (urgent / default / bulk)."""
    deliver_message.apply_async(args=[str(message.pk)], queue=message.lane)


@worker_process_shutdown.connect  # prefork children
@worker_shutdown.connect  # the worker itself: the solo and thread pools deliver there
def close_connections(**kwargs) -> None:
    """Say QUIT to the SMTP servers this worker process kept connections open to."""
    connections.close_all()
