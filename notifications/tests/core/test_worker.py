"""The Celery path with real worker processes, their own Redis, and a real SMTP server."""
from __future__ import annotations

import os
import re
import time
from collections import Counter

import pytest

from notifications.models import Message, Status
from notifications.channels.email.sending import send_mail_template
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
    assert wait_until(lambda: Message.objects.get(pk=message.pk).status == Status.SENT), worker.log()
    assert "notifications.drain_lane[" in worker.log()


RMA_VARS = {"rma_number": "RMA-1", "serial_number": "SN-1", "status": "ouvert", "link_tracking": "https://rgz.bj/rma/1"}


def test_independent_sends_wake_their_lane_once_each_and_are_drained_together(
    default_templates, start_worker, smtp_server
):
    """Five independent sends on the default lane and one urgent: a wake-up per send and lane,
    the first drain takes the whole default lane, the late wake-ups find it drained."""
    for index in range(5):
        send_mail_template("rma_confirmation", f"reseller{index}@techconnect.bj", RMA_VARS)
    urgent = send_mail_template("incident_alert_critical", "reseller@techconnect.bj", INCIDENT_VARS)
    assert [m.lane for m in urgent] == ["urgent"] * 2  # + noc@rgz.bj

    worker = start_worker()
    received = smtp_server.wait_for(7, timeout=60)
    assert len(received) == 7, worker.log()
    assert wait_until(lambda: Message.objects.filter(status=Status.SENT).count() == 7), worker.log()
    # A task's result is logged after its rows are recorded: read the log once every drain logged it.
    assert wait_until(lambda: worker.log().count("notifications.drain_lane[") == 2 * len(
        task_ids(worker.log(), "notifications.drain_lane")
    ) and "{'sent': 5}" in worker.log(), 10), worker.log()
    log = worker.log()
    drains = len(task_ids(log, "notifications.drain_lane"))
    # At most one wake-up per send's transaction and lane, and one per lane when the worker connected.
    assert 2 <= drains <= 6 + 3, log
    results = Counter(re.findall(r"drain_lane\[[^\]]+\] succeeded in [^:]+: (\{.*\})", log))
    # The five independent sends drained together; the late wake-ups found the lane drained (one claim each).
    assert results == Counter({"{'sent': 5}": 1, "{'sent': 2}": 1, "{}": drains - 2}), log


def task_ids(log: str, task: str) -> set[str]:
    """The ids of the tasks named `task` that the worker logged as received."""
    return set(re.findall(rf"Task {re.escape(task)}\[([0-9a-f-]+)\] received", log))


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
    """Nothing accepted is lost: the row outlives the failed publish, and once the broker answers
    the wake-up it owes is published (by this process's prober) without any sweep."""
    from notifications.core.outbox import wakeups

    broker.stop()
    [message] = send_mail_template("billing_invoice_monthly", "reseller@techconnect.bj", INVOICE_VARS)
    message.refresh_from_db()
    assert message.status == Status.QUEUED  # accepted and audited although nothing was published
    assert wakeups.known_down()

    broker.start()
    assert wait_until(lambda: not wakeups.known_down(), 30)  # the prober found it back
    worker = start_worker()
    received = smtp_server.wait_for(1, timeout=60)
    assert len(received) == 1, worker.log()
    assert wait_until(lambda: Message.objects.get(pk=message.pk).status == Status.SENT), worker.log()
    assert "sweep_stranded_messages[" not in worker.log()


@pytest.mark.smtp_delay(0.25)
def test_a_worker_killed_mid_drain_loses_nothing_and_resends_at_most_what_it_had_not_recorded(
    default_templates, start_worker, smtp_server, settings
):
    """SIGKILL in the middle of a drain: what was recorded stays sent; the sweep hands the rest on."""
    from notifications.core.outbox.drain import FLUSH_SECONDS
    from notifications.core.outbox.sweep import sweep

    messages = send_mail_template("rma_confirmation", [f"reseller{i}@techconnect.bj" for i in range(12)], RMA_VARS)
    ids = [str(m.pk) for m in messages]
    first = start_worker(name="w1", env={"OUTBOX_DRAIN_MAX_SECONDS": "60"})
    assert wait_until(lambda: len(smtp_server.received) >= 7, 60), first.log()
    first.process.kill()  # no warm shutdown: the batch stops wherever it is
    first.process.wait(10)
    time.sleep(0.5)  # a message whose DATA was in the server's slow reply may still land

    arrived_before = len(smtp_server.received)
    rows = Message.objects.filter(pk__in=ids)
    recorded = set(rows.filter(status=Status.SENT).values_list("pk", flat=True))
    assert recorded and len(recorded) < 12, "outcomes are flushed during a drain, not only at its end"
    assert set(rows.exclude(status=Status.SENT).values_list("status", flat=True)) == {Status.SENDING}
    # at most the last second's messages were accepted but not yet recorded
    assert arrived_before - len(recorded) <= FLUSH_SECONDS / 0.25 + 1

    settings.OUTBOX_LEASE_SECONDS = 0  # the dead worker's claims have expired
    assert sweep().released == 12 - len(recorded)
    second = start_worker(name="w2")
    assert wait_until(lambda: rows.filter(status=Status.SENT).count() == 12, 60), second.log()
    received = [r.notification_id for r in smtp_server.received]
    assert set(received) == set(ids)  # nothing lost
    accepted_unrecorded = set(received[:arrived_before]) - {str(pk) for pk in recorded}
    assert len(accepted_unrecorded) == arrived_before - len(recorded)  # each arrived once before the kill
    arrived = Counter(received)
    # Duplicates are exactly the messages the server had accepted but the dead worker had not
    # recorded, each sent once more; every other message arrived once.
    assert {message_id for message_id, times in arrived.items() if times > 1} == accepted_unrecorded
    assert max(arrived.values()) <= 2
    assert not {str(pk) for pk in recorded} & set(received[arrived_before:])  # recorded ones never again
