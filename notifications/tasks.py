"""Celery tasks: thin wrappers that take ids and call a service."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from celery import shared_task
from django.conf import settings
from celery.signals import worker_process_shutdown, worker_shutdown

from notifications.backends import connections
from notifications.models import EmailMessage, Lane
from notifications.services import batches, delivery
from notifications.services.sweep import sweep_stranded_messages


@shared_task(name="notifications.deliver_message", acks_late=True, ignore_result=True)
def deliver_message(message_id: str) -> str:
    """Deliver one queued message; a duplicate or late task finds it claimed and skips."""
    return delivery.deliver(message_id)


@shared_task(name="notifications.deliver_messages", acks_late=True, ignore_result=True)
def deliver_messages(message_ids: list[str]) -> dict[str, int]:
    """Deliver a batch of queued messages (services.batches); ids claimed elsewhere are skipped."""
    return batches.deliver_many(message_ids=message_ids)


@shared_task(name="notifications.sweep_stranded_messages", ignore_result=True)
def sweep() -> dict:
    """Run by Celery beat every minute (CELERY_BEAT_SCHEDULE); see services.sweep."""
    result = sweep_stranded_messages()
    return {"released": result.requeued_from_sending, "republished": result.republished}


def enqueue_delivery(message: EmailMessage) -> None:
    """Queue delivery on the message's lane (urgent / default / bulk)."""
    deliver_message.apply_async(args=[str(message.pk)], queue=message.lane)


def enqueue_deliveries(messages: Iterable[EmailMessage]) -> None:
    """Queue delivery of many messages, each on its lane.

    An urgent message gets a task of its own, so none waits behind another; on the default
    and bulk lanes, up to `EMAIL_DELIVERY_BATCH_SIZE` messages share one `deliver_messages`
    task, which claims, reads and records them together (services.batches).
    """
    by_lane: dict[str, list[EmailMessage]] = defaultdict(list)
    for message in messages:
        by_lane[message.lane].append(message)
    size = max(1, settings.EMAIL_DELIVERY_BATCH_SIZE)
    for lane, group in by_lane.items():
        if lane == Lane.URGENT or size == 1:
            for message in group:
                enqueue_delivery(message)
            continue
        for start in range(0, len(group), size):
            chunk = group[start:start + size]
            if len(chunk) == 1:
                enqueue_delivery(chunk[0])
            else:
                deliver_messages.apply_async(args=[[str(m.pk) for m in chunk]], queue=lane)


@worker_process_shutdown.connect  # prefork children
@worker_shutdown.connect  # the worker itself: the solo and thread pools deliver there
def close_connections(**kwargs) -> None:
    """Say QUIT to the SMTP servers this worker process kept connections open to."""
    connections.close_all()
