"""Wake-ups: one per lane per transaction, and a send that never waits for a dead broker."""
from __future__ import annotations

import socket
import time
import threading

import pytest
from django.db import transaction

from notifications.models import Message, Status
from notifications.core.outbox import wakeups
from notifications.channels.email.sending import send_mail_template
from notifications.tests.support.payloads import INCIDENT_VARS, WELCOME_VARS


class DeadBroker:
    """A port that accepts TCP connections and closes them at once, counting them."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(50)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def dead_broker(monkeypatch):
    from config.celery import app

    broker = DeadBroker()
    url = f"redis://127.0.0.1:{broker.port}/0"
    monkeypatch.setenv("CELERY_BROKER_URL", url)
    saved = {key: app.conf[key] for key in ("broker_url", "task_always_eager")}
    app.conf.update(broker_url=url, task_always_eager=False)
    app._pool = None
    app.amqp._producer_pool = None
    yield broker
    app._pool = None
    app.amqp._producer_pool = None
    app.conf.update(saved)
    broker.close()


@pytest.mark.django_db(transaction=True)
def test_with_the_broker_unreachable_a_send_commits_and_tries_the_broker_a_few_times_at_most(
    default_templates, dead_broker
):
    [message] = send_mail_template("onboarding_welcome", "a@rgz.bj", WELCOME_VARS)

    assert Message.objects.get(pk=message.pk).status == Status.QUEUED  # kept for the sweep
    # the wake-up mark's SET, then the publish and its one retry: kombu alone would retry for ~6 s
    assert 1 <= dead_broker.connections <= 3


def test_sends_in_one_transaction_publish_one_wake_up_per_lane(
    default_templates, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        for index in range(5):
            send_mail_template("onboarding_welcome", f"a{index}@rgz.bj", WELCOME_VARS)
        send_mail_template("incident_alert_critical", "noc@rgz.bj", INCIDENT_VARS)

    [wake_up] = callbacks
    assert isinstance(wake_up, wakeups._WakeUp) and wake_up.lanes == {"default", "urgent"}


@pytest.mark.django_db(transaction=True)
def test_with_a_redis_broker_one_wake_up_per_lane_waits_at_a_time(default_templates, broker):
    """Independent sends while no drain has started leave one wake-up, not one each; a drain
    starting clears the mark, so the next send wakes the lane again."""
    import redis

    queue = redis.Redis.from_url(broker.url)
    for index in range(3):
        send_mail_template("onboarding_welcome", f"a{index}@rgz.bj", WELCOME_VARS)
    assert queue.llen("default") == 1

    wakeups.taken("default")  # what a drain does before it claims
    send_mail_template("onboarding_welcome", "b@rgz.bj", WELCOME_VARS)
    send_mail_template("incident_alert_critical", "noc@rgz.bj", INCIDENT_VARS)
    assert (queue.llen("default"), queue.llen("urgent")) == (2, 1)
    assert wakeups.wake("default", force=True)  # the sweep publishes whatever the mark says
    assert queue.llen("default") == 3


@pytest.mark.django_db(transaction=True)
def test_once_the_broker_is_known_down_a_send_does_not_try_it_and_the_prober_pays_what_is_owed(
    default_templates, dead_broker, settings
):
    """The first send finds the broker down; the next ones commit without a single connection to
    it; the prober, on a thread of its own, publishes the lanes owed once it answers."""
    settings.BROKER_RECONNECT_MAX_SECONDS = 60  # the prober's first try comes after the test
    send_mail_template("onboarding_welcome", "a@rgz.bj", WELCOME_VARS)
    assert wakeups.known_down()
    tried = dead_broker.connections

    for index in range(20):
        send_mail_template("onboarding_welcome", f"b{index}@rgz.bj", WELCOME_VARS)
        send_mail_template("incident_alert_critical", f"noc{index}@rgz.bj", INCIDENT_VARS)
    assert dead_broker.connections == tried
    assert Message.objects.filter(status=Status.QUEUED).count() == 61  # + the NOC copy of each alert
    assert set(wakeups._broker.owed) == {"default", "urgent"}


@pytest.mark.django_db(transaction=True)
def test_the_prober_publishes_the_owed_wake_ups_once_the_broker_answers(default_templates, broker, settings):
    import redis

    settings.BROKER_RECONNECT_MAX_SECONDS = 0.1
    queue = redis.Redis.from_url(broker.url)
    broker.stop()
    send_mail_template("onboarding_welcome", "a@rgz.bj", WELCOME_VARS)
    send_mail_template("incident_alert_critical", "noc@rgz.bj", INCIDENT_VARS)
    assert wakeups.known_down()

    broker.start()
    deadline = time.monotonic() + 10
    while wakeups.known_down() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not wakeups.known_down()
    # The prober marks the broker up, then publishes what is owed, lane by lane: wait for both
    # (asserted at once, a loaded machine read the default queue before its publish).
    while (queue.llen("default"), queue.llen("urgent")) != (1, 1) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (queue.llen("default"), queue.llen("urgent")) == (1, 1)


@pytest.mark.django_db(transaction=True)
def test_a_lane_has_one_timer_the_earliest_asked_for(broker):
    """Rows due by the clock (a retry, a rest, a scheduled time) get a countdown wake-up: one per
    lane waits, the earliest; a later one is covered, since that drain sets the next timer."""
    import redis

    client = redis.Redis.from_url(broker.url)
    now = time.time()
    assert wakeups.wake_at("default", at=now + 30)
    assert wakeups.wake_at("default", at=now + 60)  # covered by the earlier one: nothing published
    assert wakeups.wake_at("default", at=now + 10)  # earlier: published
    assert wakeups.wake_at("bulk", at=now + 5)
    timers = {lane: client.llen(lane) for lane in ("default", "bulk")}
    assert timers == {"default": 2, "bulk": 1}
    assert float(client.get("notifications:wake-timer:default")) == pytest.approx(now + 10, abs=0.1)
    # Never further than the horizon (below Redis's visibility timeout).
    assert wakeups.wake_at("urgent", at=now + 90 * 86400)
    assert float(client.get("notifications:wake-timer:urgent")) <= now + wakeups.TIMER_HORIZON_SECONDS + 1
