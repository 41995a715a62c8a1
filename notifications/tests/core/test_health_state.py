"""Health state shared by every process (`core.health_state`): real processes, a real Redis,
real workers against a primary SMTP server that never answers."""
from __future__ import annotations

import multiprocessing

import pytest
from django.db import transaction

from notifications.core import health_state
from notifications.models import Message, Lane, SMTPSecurity, SMTPServerConfig, Status
from notifications.core.outbox import drain
from notifications.channels.email.sending import send_mail_template, send_simple_mail
from notifications.tests.support.payloads import INCIDENT_VARS
from notifications.tests.support.services import free_port
from notifications.tests.support.smtp import SilentServer
from notifications.tests.support.worker import wait_until

FORK = multiprocessing.get_context("fork")


@pytest.fixture
def shared(redis_server, settings):
    settings.OUTBOX_SHARED_STATE_URL = redis_server.url
    return redis_server


def _in_another_process(call, *args) -> None:
    child = FORK.Process(target=call, args=args)
    child.start()
    child.join(30)
    assert child.exitcode == 0


def _rest_lane(seconds: float) -> None:
    health_state.rest(health_state.lane_key("default"), seconds=seconds)


def _count_outage() -> None:
    health_state.count_outage(health_state.lane_key("default"))


def test_a_rest_set_by_another_process_is_seen_here_and_outages_count_across_processes(shared):
    _in_another_process(_rest_lane, 30)
    _in_another_process(_count_outage)
    _in_another_process(_count_outage)

    assert 29 < health_state.rest_left(health_state.lane_key("default")) <= 30
    assert health_state.rest_left(health_state.lane_key("urgent")) == 0
    assert health_state.count_outage(health_state.lane_key("default")) == 3  # the third in a row, deployment-wide
    health_state.clear_outages(health_state.lane_key("default"))
    assert health_state.count_outage(health_state.lane_key("default")) == 1


@pytest.mark.django_db
def test_a_lane_resting_after_another_processs_outage_is_not_drained_here(shared, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):  # queued, not yet drained
        [message] = send_simple_mail("ops@rgz.bj", "Export prêt", "Votre export est prêt.")
    _in_another_process(_rest_lane, 30)

    assert drain.drain_lane(lane=Lane.DEFAULT) == {drain.RESTING: 1}
    message.refresh_from_db()
    assert message.status == Status.QUEUED and message.attempts == 0


def test_without_redis_the_state_is_this_processs_own(settings):
    settings.OUTBOX_SHARED_STATE_URL = ""
    health_state.forget_local_state()
    health_state.rest("smtp-server:1:x", seconds=30)

    _in_another_process(_expect_not_resting, "smtp-server:1:x")  # a forked child starts knowing nothing
    assert health_state.rest_left("smtp-server:1:x") > 29
    health_state.end_rest("smtp-server:1:x")
    assert health_state.rest_left("smtp-server:1:x") == 0


def _expect_not_resting(key: str) -> None:
    assert health_state.rest_left(key) == 0


def test_with_redis_gone_each_process_keeps_its_own_and_nothing_fails(settings, caplog):
    settings.OUTBOX_SHARED_STATE_URL = f"redis://127.0.0.1:{free_port()}/0"  # nobody listens
    health_state.forget_local_state()

    health_state.rest("lane:bulk", seconds=30)
    assert health_state.rest_left("lane:bulk") > 29
    assert health_state.count_outage("lane:bulk") == 1
    # Asked once, then left alone for a while: one warning, not one per call.
    assert len([r for r in caplog.records if "does not answer" in r.getMessage()]) == 1


# --- real workers: a primary that times out costs its timeout once across two processes -----------


@pytest.fixture
def silent_server():
    server = SilentServer().start()
    yield server
    server.stop()


def server_config(name: str, host: str, port: int, *, order: int, timeout_seconds: int) -> SMTPServerConfig:
    config = SMTPServerConfig(name=name, host=host, port=port, order=order, security=SMTPSecurity.NONE,
                              timeout_seconds=timeout_seconds)
    config.set_password("")
    config.save()
    return config


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_primary_that_times_out_costs_its_timeout_once_across_two_worker_processes(
    default_templates, start_worker, start_smtp_server, silent_server, settings
):
    settings.EMAIL_BACKEND = "notifications.backends.DatabaseSMTPBackend"
    backup = start_smtp_server()
    server_config("primary", silent_server.host, silent_server.port, order=1, timeout_seconds=1)
    server_config("backup", backup.host, backup.port, order=2, timeout_seconds=5)
    # Two processes, each on a lane of its own, so each message's process is known; their
    # shared state is the deployment's Redis (the broker, by default).
    env = {"EMAIL_BACKEND": "notifications.backends.DatabaseSMTPBackend", "SMTP_FAILOVER_COOLDOWN_SECONDS": "300"}
    first = start_worker(name="first", queues="default", env=env, wait=False)
    second = start_worker(name="second", queues="urgent", env=env, wait=False)
    first.wait_ready()
    second.wait_ready()
    logs = lambda: first.log() + second.log()  # noqa: E731

    with transaction.atomic():
        [one] = send_simple_mail("ops@rgz.bj", "Export prêt", "Votre export est prêt.")
    assert wait_until(lambda: Message.objects.filter(pk=one.pk, status=Status.SENT).exists(), 30), logs()
    assert silent_server.connections == 1  # the first process met the primary's timeout

    urgent = send_mail_template("incident_alert_critical", "reseller@techconnect.bj", INCIDENT_VARS)
    ids = [message.pk for message in urgent]
    assert wait_until(lambda: Message.objects.filter(pk__in=ids, status=Status.SENT).count() == len(ids), 30), logs()

    assert silent_server.connections == 1  # the second process knew it resting: never tried it
    assert set(Message.objects.values_list("sent_via", flat=True)) == {"backup"}
    assert len(backup.wait_for(1 + len(ids))) == 1 + len(ids)
    assert "notifications.drain_lane" in first.log() and "notifications.drain_lane" in second.log()
