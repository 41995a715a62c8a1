"""The per-provider caps held by the `Provider` base (issue 21), with real workers and a real relay.

A relay that refuses a 4th concurrent connection with 421, behind the settings' SMTP server capped
at 3 connections and 20 messages a second (`OUTBOX_PROVIDER_CAPS`): four sending processes (two
workers of two prefork children each) never exceed either cap, every message arrives once, and
none is `failed`. The rate is checked on the times the relay received each message, over a
sliding one-second window. In-process, a message held back by a cap past `OUTBOX_CAP_WAIT_SECONDS`
goes back uncounted (an outage of the provider), never failed.
"""
from __future__ import annotations

import json

import pytest
from django.utils import timezone

from notifications.core import caps, channels
from notifications.core.channels import DeliveryFailed, ErrorClass
from collections import Counter

from notifications.core.providers import CapWait, Caps, caps_for
from notifications.models import Message, Status
from notifications.models import DeliveryAttempt
from notifications.tests.core.test_outbox_workers import (
    arrivals, assert_sent_once, count, drained, send_independently, settle,
)
from notifications.tests.support.relays import most_in_any_window, relay
from notifications.tests.support.services import require_postgres
from notifications.tests.support.worker import wait_until

CAPPED = {"smtp": {"connections": 3, "per_second": 20}}
SENDING_PROCESSES = 4  # two workers of two prefork children, one message in flight each
# The cap counts grants: no closed one-second window holds more than 20 (Redis's clock). The
# relay stamps a message when its DATA ends, a little after its grant (the exchange, the 20 ms
# answer, the machine's scheduling). A message arriving within a one-second window was granted
# within it, or before it and still in flight at its start: at most one per sending process. So
# the stated tolerance is the messages in flight, and nothing more: 20 + 4.
RATE_TOLERANCE = SENDING_PROCESSES


@pytest.fixture
def capped_relay():
    server = relay(delay=0.02, max_connections=3)
    yield server
    server.stop()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_four_sending_processes_never_exceed_three_connections_nor_twenty_a_second_and_each_message_arrives_once(
    default_templates, start_worker, capped_relay, broker, settings
):
    require_postgres()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    env = {"OUTBOX_PROVIDER_CAPS": json.dumps(CAPPED), "OUTBOX_CAP_WAIT_SECONDS": "30"}
    workers = [start_worker(name=name, smtp=capped_relay, pool="prefork", concurrency=2, env=env, wait=False)
               for name in ("w1", "w2")]
    for worker in workers:
        worker.wait_ready()

    ids = send_independently(120)

    assert wait_until(lambda: count(Status.SENT) == len(ids), 90), [w.log() for w in workers]
    settle(broker, *workers)
    assert_sent_once(ids, capped_relay)
    assert count(Status.FAILED) == 0
    assert capped_relay.concurrency.refused == 0, "a 4th connection was tried"
    assert capped_relay.concurrency.peak <= 3
    busiest = most_in_any_window(capped_relay.arrival_times(), 1.0)
    times = sorted(capped_relay.arrival_times())
    assert busiest <= 20 + RATE_TOLERANCE, f"{busiest} messages arrived within one second: {[round(t - times[0], 3) for t in times]}"


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_two_workers_at_four_in_flight_never_exceed_three_connections_nor_twenty_a_second(
    default_templates, start_worker, capped_relay, broker, settings
):
    """Issue 21's acceptance: two worker processes at N = 4 (eight sending threads) behind a
    relay capped at 3 connections: the caps hold, every message arrives once, none fails."""
    require_postgres()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    env = {"OUTBOX_PROVIDER_CAPS": json.dumps(CAPPED), "OUTBOX_CAP_WAIT_SECONDS": "30", "OUTBOX_CONCURRENCY": "4"}
    workers = [start_worker(name=name, smtp=capped_relay, env=env, wait=False) for name in ("w1", "w2")]
    for worker in workers:
        worker.wait_ready()

    ids = send_independently(120)

    assert wait_until(lambda: count(Status.SENT) == len(ids), 90), [w.log() for w in workers]
    settle(broker, *workers)
    assert_sent_once(ids, capped_relay)
    assert count(Status.FAILED) == 0
    assert sum(drained(worker) for worker in workers) == len(ids)
    assert capped_relay.concurrency.refused == 0, "a 4th connection was tried"
    assert 1 < capped_relay.concurrency.peak <= 3
    # In flight at once: at most one message per connection, so 3 (see RATE_TOLERANCE).
    busiest = most_in_any_window(capped_relay.arrival_times(), 1.0)
    assert busiest <= 20 + 3, f"{busiest} messages arrived within one second"


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_data_timeout_on_one_of_four_connections_fails_that_message_as_unknown_and_the_others_arrive(
    default_templates, start_worker, broker, settings
):
    require_postgres()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    server = relay(delay=0.02, stall_ids={"none yet"}, stall_seconds=8)
    try:
        ids = send_independently(40)  # queued: no worker runs yet
        stalled = ids[5]
        server.handler.stall_ids.add(stalled)
        worker = start_worker(smtp=server, env={"OUTBOX_CONCURRENCY": "4", "SMTP_TIMEOUT_SECONDS": "2"})

        assert wait_until(lambda: count(Status.SENT) == len(ids) - 1 and count(Status.FAILED) == 1, 60), worker.log()
        settle(broker, worker)
        assert arrivals(server) == Counter({message_id: 1 for message_id in ids})
        failed = Message.objects.get(pk=stalled)
        assert (failed.status, failed.attempts) == (Status.FAILED, 1)
        assert "the outcome is unknown" in failed.error_message, failed.error_message
        assert DeliveryAttempt.objects.get(message=failed).outcome == "unknown"
        # The other connections went on beside the stalled one; the relay counts the stalled
        # connection until its 8 s pause ends, though the worker closed it at its 2 s timeout
        # and opened a fresh one: 4 + 1.
        assert 1 < server.concurrency.peak <= 4 + 1
    finally:
        server.stop()


def test_the_caps_setting_is_read_per_provider_key(settings):
    settings.OUTBOX_PROVIDER_CAPS = {"smtp": {"connections": 3, "per_second": 20}, "sendgrid": {"per_second": 10},
                                     "amazon_ses": {}}
    assert caps_for("smtp") == Caps(connections=3, per_second=20.0)
    assert caps_for("sendgrid") == Caps(connections=None, per_second=10.0)
    assert caps_for("amazon_ses") is None and caps_for("mailgun") is None and caps_for("") is None


@pytest.mark.django_db(transaction=True)
def test_a_message_held_back_by_a_full_connection_cap_goes_back_uncounted_and_never_fails(
    default_templates, smtp_backend, smtp_server, settings
):
    """Every connection slot is held elsewhere (another process): the message waits
    `OUTBOX_CAP_WAIT_SECONDS`, then is an outage of the provider: no attempt, not failed."""
    from notifications.channels.email.sending import send_mail_template
    from notifications.tests.core.test_outbox_workers import RMA_VARS

    settings.OUTBOX_PROVIDER_CAPS = {"smtp": {"connections": 1}}
    settings.OUTBOX_CAP_WAIT_SECONDS = 0.1
    elsewhere = caps.acquire_slot("smtp", limit=1, lease_seconds=30)
    assert elsewhere is not None
    try:
        [message] = send_mail_template("rma_confirmation", "reseller@techconnect.bj", RMA_VARS)
        message.refresh_from_db()
    finally:
        elsewhere.release()

    assert message.status == Status.QUEUED and message.attempts == 0
    assert message.next_attempt_at > timezone.now()  # after the lane's rest
    assert not smtp_server.received


@pytest.mark.django_db
def test_a_cap_wait_is_an_outage_of_the_provider_named_with_its_setting(smtp_backend, settings):
    settings.OUTBOX_PROVIDER_CAPS = {"smtp": {"connections": 1, "per_second": 20}}
    settings.OUTBOX_CAP_WAIT_SECONDS = 0.05
    provider = channels.get("email").provider
    elsewhere = caps.acquire_slot("smtp", limit=1, lease_seconds=30)
    row = Message(address="a@rgz.bj", attempts=1)
    try:
        with pytest.raises(DeliveryFailed) as failed:
            provider.send(row)
    finally:
        elsewhere.release()
    assert isinstance(failed.value.__cause__, CapWait)
    assert failed.value.error.kind is ErrorClass.OUTAGE
    assert "OUTBOX_PROVIDER_CAPS" in str(failed.value.error.reason)
