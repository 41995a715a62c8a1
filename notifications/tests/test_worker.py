"""The Celery path with real worker processes, their own Redis, and a real SMTP server."""
from __future__ import annotations

import os
import re
import time

import pytest
from django.db import transaction

from notifications.models import EmailMessage, Status
from notifications.services.sending import send_mail_template
from notifications.tests.support.services import require_postgres
from notifications.tests.support.worker import wait_until
from notifications.tests.support.payloads import INCIDENT_VARS, INVOICE_VARS

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
    """Each id has two tasks, one after the other, as a broker redelivery would leave them.

    They are published once both workers are idle, so with a prefetch of one the two tasks
    of the first id reach the two processes together. Across processes the collision is a
    matter of milliseconds; the claim's atomicity itself is raced deterministically by
    threads in test_batch_delivery.py. This proves the whole path: ten sent, each once.
    """
    require_postgres()
    from notifications.tasks import deliver_message

    with transaction.atomic():  # rows queued here, their tasks published below in pairs
        messages = [
            send_mail_template("rma_confirmation", f"reseller{index}@techconnect.bj", RMA_VARS)[0]
            for index in range(10)
        ]
        transaction.get_connection().run_on_commit.clear()
    first, second = start_worker(name="w1", wait=False), start_worker(name="w2", wait=False)
    first.wait_ready()
    second.wait_ready()
    for message in messages:
        for _ in range(2):
            deliver_message.apply_async(args=[str(message.pk)], queue=message.lane)
    ids = {str(m.pk) for m in messages}
    assert wait_until(lambda: EmailMessage.objects.filter(pk__in=ids, status=Status.SENT).count() == 10, 120)
    time.sleep(1.0)  # any duplicate would be in flight by now
    received = smtp_server.received
    assert len(received) == 10
    assert sorted(r.message["X-Notification-Id"] for r in received) == sorted(ids)
    assert set(EmailMessage.objects.filter(pk__in=ids).values_list("attempts", flat=True)) == {1}
    logs = first.log() + second.log()
    assert "succeeded in" in first.log() and "succeeded in" in second.log(), "both workers should have taken tasks"
    assert logs.count("'skipped'") == 10, logs  # every id's second task found it claimed


def test_a_send_to_many_shares_one_task_on_the_default_lane_and_urgent_messages_each_get_their_own(
    default_templates, start_worker, smtp_server
):
    batch = send_mail_template("rma_confirmation", [f"reseller{i}@techconnect.bj" for i in range(3)], RMA_VARS)
    urgent = send_mail_template("incident_alert_critical", "reseller@techconnect.bj", INCIDENT_VARS)
    assert [m.lane for m in batch] == ["default"] * 3 and [m.lane for m in urgent] == ["urgent"] * 2  # + noc@rgz.bj

    worker = start_worker()
    received = smtp_server.wait_for(5, timeout=60)
    assert len(received) == 5, worker.log()
    ids = [m.pk for m in batch + urgent]
    assert wait_until(lambda: EmailMessage.objects.filter(pk__in=ids, status=Status.SENT).count() == 5), worker.log()
    log = worker.log()
    assert len(task_ids(log, "notifications.deliver_messages")) == 1, log
    assert len(task_ids(log, "notifications.deliver_message")) == 2, log
    assert "{'skipped': 0, 'sent': 3}" in log


def task_ids(log: str, task: str) -> set[str]:
    """The ids of the tasks named `task` that the worker logged as received."""
    return set(re.findall(rf"Task {re.escape(task)}\[([0-9a-f-]+)\] received", log))


@pytest.mark.smtp_delay(0.2)
def test_two_workers_with_batches_of_the_same_ids_send_each_once(default_templates, start_worker, smtp_server):
    """Each worker gets a batch task holding all ten ids; their claims overlap on PostgreSQL."""
    require_postgres()
    from notifications.tasks import deliver_messages

    messages = send_mail_template("rma_confirmation", [f"reseller{i}@techconnect.bj" for i in range(10)], RMA_VARS)
    ids = [str(m.pk) for m in messages]
    deliver_messages.apply_async(args=[list(reversed(ids))], queue="default")  # a second batch, in another order
    first, second = start_worker(name="w1", wait=False), start_worker(name="w2", wait=False)
    first.wait_ready()
    second.wait_ready()
    assert wait_until(lambda: EmailMessage.objects.filter(pk__in=ids, status=Status.SENT).count() == 10, 120)
    time.sleep(1.0)  # any duplicate would be in flight by now
    received = smtp_server.received
    assert sorted(r.message["X-Notification-Id"] for r in received) == sorted(ids)
    assert set(EmailMessage.objects.filter(pk__in=ids).values_list("attempts", flat=True)) == {1}


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


@pytest.mark.smtp_delay(0.25)
def test_a_worker_killed_mid_batch_loses_nothing_and_resends_at_most_what_it_had_not_recorded(
    default_templates, start_worker, smtp_server, settings
):
    """SIGKILL in the middle of a batch: what was recorded stays sent; the sweep hands the rest on."""
    from notifications.services.batches import FLUSH_SECONDS
    from notifications.services.sweep import sweep_stranded_messages

    messages = send_mail_template("rma_confirmation", [f"reseller{i}@techconnect.bj" for i in range(12)], RMA_VARS)
    ids = [str(m.pk) for m in messages]
    first = start_worker(name="w1")
    assert wait_until(lambda: len(smtp_server.received) >= 7, 60), first.log()
    first.process.kill()  # no warm shutdown: the batch stops wherever it is
    first.process.wait(10)
    time.sleep(0.5)  # a message whose DATA was in the server's slow reply may still land

    arrived_before = len(smtp_server.received)
    rows = EmailMessage.objects.filter(pk__in=ids)
    recorded = set(rows.filter(status=Status.SENT).values_list("pk", flat=True))
    assert recorded and len(recorded) < 12, "outcomes are flushed during a batch, not only at its end"
    assert set(rows.exclude(status=Status.SENT).values_list("status", flat=True)) == {Status.SENDING}
    # at most the last second's messages were accepted but not yet recorded
    assert arrived_before - len(recorded) <= FLUSH_SECONDS / 0.25 + 1

    settings.EMAIL_SENDING_LEASE_SECONDS = 0  # the dead worker's claims have expired
    assert sweep_stranded_messages().requeued_from_sending == 12 - len(recorded)
    second = start_worker(name="w2")
    assert wait_until(lambda: rows.filter(status=Status.SENT).count() == 12, 60), second.log()
    received = [r.message["X-Notification-Id"] for r in smtp_server.received]
    assert set(received) == set(ids)  # nothing lost
    resent = len(received) - 12
    assert resent == arrived_before - len(recorded)  # only what the dead worker had not recorded
    assert not {str(pk) for pk in recorded} & set(received[arrived_before:])  # recorded ones never again
