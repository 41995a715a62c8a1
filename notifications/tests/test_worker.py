"""The Celery path with real worker processes, their own Redis, and a real SMTP server."""
from __future__ import annotations

import os
import time

import pytest

from notifications.models import EmailMessage, Status
from notifications.services.sending import send_mail_template
from notifications.tests.support.services import require_postgres
from notifications.tests.support.worker import wait_until
from notifications.tests.support.payloads import INVOICE_VARS

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_real_worker_delivers_what_stays_queued_until_it_runs(default_templates, start_worker, smtp_server):
    [message] = send_mail_template("billing_invoice_monthly", "reseller@techconnect.bj", INVOICE_VARS)
    time.sleep(0.5)
    message.refresh_from_db()
    assert message.status == Status.QUEUED and smtp_server.received == []

    worker = start_worker()
    assert worker.pid != os.getpid()
    received = smtp_server.wait_for(1, timeout=60)
    assert len(received) == 1, worker.log()
    [received] = received
    assert received.message["Subject"] == "Facture RGZ — février 2026"
    assert wait_until(lambda: EmailMessage.objects.get(pk=message.pk).status == Status.SENT), worker.log()
    assert "notifications.deliver_message[" in worker.log()


RMA_VARS = {"rma_number": "RMA-1", "serial_number": "SN-1", "status": "ouvert", "link_tracking": "https://rgz.bj/rma/1"}


@pytest.mark.smtp_delay(0.3)
def test_two_workers_released_together_on_the_same_ids_send_each_once(default_templates, start_worker, smtp_server):
    """Every id is queued twice; two workers race for them against a slow SMTP server."""
    require_postgres()
    from notifications.tasks import deliver_message

    messages = [
        send_mail_template("rma_confirmation", f"reseller{index}@techconnect.bj", RMA_VARS)[0] for index in range(10)
    ]
    for message in messages:  # a second task for each id, as a broker redelivery would
        deliver_message.apply_async(args=[str(message.pk)], queue=message.lane)
    first, second = start_worker(name="w1", wait=False), start_worker(name="w2", wait=False)
    first.wait_ready()
    second.wait_ready()
    ids = {str(m.pk) for m in messages}
    assert wait_until(lambda: EmailMessage.objects.filter(pk__in=ids, status=Status.SENT).count() == 10, 120)
    time.sleep(1.0)  # any duplicate would be in flight by now
    received = smtp_server.received
    assert len(received) == 10
    assert sorted(r.message["X-Notification-Id"] for r in received) == sorted(ids)
    assert set(EmailMessage.objects.filter(pk__in=ids).values_list("attempts", flat=True)) == {1}
    both = "notifications.deliver_message[" in first.log() and "notifications.deliver_message[" in second.log()
    assert both, "both workers should have taken tasks"


@pytest.mark.django_db(transaction=False)
def test_the_configured_broker_is_reachable():
    """CI points CELERY_BROKER_URL at the machine's Redis: prove the real broker answers."""
    from kombu import Connection

    from notifications.tests.support.services import require

    url = os.environ.get("CELERY_BROKER_URL", "")
    require(url.startswith(("redis://", "amqp://")), "CELERY_BROKER_URL names no real broker")
    with Connection(url, connect_timeout=5) as connection:
        connection.ensure_connection(max_retries=1)
        with connection.SimpleQueue("notifications-ci-smoke") as queue:
            queue.put({"ping": 1})
            message = queue.get(timeout=5)
            message.ack()
            assert message.payload == {"ping": 1}


def test_a_send_while_the_broker_is_down_is_kept_and_delivered_once_it_is_back(
    default_templates, broker, start_worker, smtp_server, settings
):
    """Nothing accepted is lost: the row outlives the failed publish, and the sweep recovers it."""
    from notifications.services.sweep import sweep_stranded_messages

    broker.stop()
    [message] = send_mail_template("billing_invoice_monthly", "reseller@techconnect.bj", INVOICE_VARS)
    message.refresh_from_db()
    assert message.status == Status.QUEUED  # accepted and audited although nothing was published

    broker.start()
    worker = start_worker()
    settings.EMAIL_SWEEP_QUEUED_AFTER_SECONDS = 0
    assert sweep_stranded_messages().republished == 1
    received = smtp_server.wait_for(1, timeout=60)
    assert len(received) == 1, worker.log()
    assert wait_until(lambda: EmailMessage.objects.get(pk=message.pk).status == Status.SENT), worker.log()
