"""One kept-open SMTP connection per process, and no message lost when the server drops it.

Sizes come from the environment: NOTIF_TEST_BULK_COUNT messages (default 200), and the
dropping server closes the connection after every NOTIF_TEST_DROP_EVERY messages (default 60).
"""
from __future__ import annotations

import math
import os
from collections import Counter

import pytest

from notifications.models import Message, SMTPSecurity, SMTPServerConfig, Status
from notifications.channels.email.sending import send_simple_mail
from notifications.tests.support.worker import wait_until

BULK = int(os.environ.get("NOTIF_TEST_BULK_COUNT", "200"))
DROP_EVERY = int(os.environ.get("NOTIF_TEST_DROP_EVERY", "60"))
CHUNK = 50  # SEND_MAX_RECIPIENTS_PER_REQUEST


def queue_bulk(count: int) -> set[str]:
    """Queue `count` messages, one per recipient, as a bulk export would; returns their ids."""
    ids: set[str] = set()
    for start in range(0, count, CHUNK):
        recipients = [f"reseller{index}@techconnect.bj" for index in range(start, min(count, start + CHUNK))]
        ids |= {str(m.pk) for m in send_simple_mail(recipients, "Relevé mensuel", "Votre relevé est prêt.")}
    return ids


def primary_server(server) -> SMTPServerConfig:
    return SMTPServerConfig.objects.create(name="primary", host=server.host, port=server.port, order=1,
                                           security=SMTPSecurity.NONE, timeout_seconds=10)


def assert_each_arrived_once(server, ids: set[str]) -> None:
    counts = Counter(received.message["X-Notification-Id"] for received in server.received)
    assert set(counts) == ids, f"{len(ids - set(counts))} messages missing"
    assert set(counts.values()) == {1}, "a message arrived twice"


def use(settings, backend: str, server) -> None:
    settings.EMAIL_BACKEND = backend
    settings.EMAIL_HOST, settings.EMAIL_PORT = server.host, server.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    if backend.endswith("DatabaseSMTPBackend"):
        primary_server(server)


BACKENDS = [
    "notifications.backends.SMTPBackend",
    "django.core.mail.backends.smtp.EmailBackend",
    "notifications.backends.DatabaseSMTPBackend",
]


@pytest.mark.django_db
@pytest.mark.parametrize("backend", BACKENDS)
def test_in_one_process_a_dropped_connection_is_reopened_and_no_message_is_lost(
    backend, settings, start_smtp_server, django_capture_on_commit_callbacks
):
    server = start_smtp_server(drop_every=DROP_EVERY)
    use(settings, backend, server)

    with django_capture_on_commit_callbacks(execute=True):
        ids = queue_bulk(BULK)

    assert_each_arrived_once(server, ids)
    assert server.connections == math.ceil(BULK / DROP_EVERY)
    assert set(Message.objects.values_list("status", "attempts").distinct()) == {(Status.SENT, 1)}


def all_sent(ids: set[str]):
    return lambda: Message.objects.filter(pk__in=ids, status=Status.SENT).count() == len(ids)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_process_delivers_bulk_over_one_smtp_connection(start_worker, smtp_server):
    worker = start_worker(env={"EMAIL_BACKEND": "notifications.backends.SMTPBackend"})

    ids = queue_bulk(BULK)

    assert wait_until(all_sent(ids), timeout=120), worker.log()[-3000:]
    assert_each_arrived_once(smtp_server, ids)
    assert smtp_server.connections == 1
    assert set(Message.objects.values_list("sent_via", flat=True)) == {f"{smtp_server.host}:{smtp_server.port}"}


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_loses_no_message_when_the_server_drops_the_connection_midway(start_worker, start_smtp_server):
    server = start_smtp_server(drop_every=DROP_EVERY)
    primary_server(server)
    worker = start_worker(env={"EMAIL_BACKEND": "notifications.backends.DatabaseSMTPBackend"})

    ids = queue_bulk(BULK)

    assert wait_until(all_sent(ids), timeout=120), worker.log()[-3000:]
    assert_each_arrived_once(server, ids)
    assert server.connections == math.ceil(BULK / DROP_EVERY)
    assert set(Message.objects.values_list("sent_via", "attempts").distinct()) == {("primary", 1)}
    assert worker.log().count("dropped the kept-open connection of primary; reconnecting") == (BULK - 1) // DROP_EVERY
