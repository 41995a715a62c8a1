"""The outbox with real worker processes, their own broker and a real SMTP server (issue 9).

Every message is counted where it lands: at the SMTP server, by its `X-Notification-Id`.
What the workers did is read from their logs (each drain's counts). Sizes come from the
environment (`NOTIF_TEST_INDEPENDENT_SENDS`, `NOTIF_TEST_BULK_QUEUED`, `NOTIF_TEST_API_SENDS`)
so a longer run can prove the same at scale; backoffs are milliseconds, and no assertion is
on wall time: they are on counts and order.
"""
from __future__ import annotations

import ast
import os
import re
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection, models, transaction
from django.utils import timezone

from notifications.access.groups import SENDERS
from notifications.models import DeliveryAttempt, Message, EmailTemplate, Lane, Status
from notifications.channels.email.sending import send_batch, send_mail_template, send_simple_mail
from notifications.tests.support.api import ApiClient, create_key, make_user
from notifications.tests.support.payloads import INCIDENT_VARS
from notifications.tests.support.services import require_postgres
from notifications.tests.support.worker import ALL_LANES, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

INDEPENDENT_SENDS = int(os.environ.get("NOTIF_TEST_INDEPENDENT_SENDS", "1000"))
BULK_QUEUED = int(os.environ.get("NOTIF_TEST_BULK_QUEUED", "2000"))
API_SENDS = int(os.environ.get("NOTIF_TEST_API_SENDS", "100"))

# The longest backoff is 50 ms: "well past it" is a few sweeps.
FAST_RETRIES = {"OUTBOX_RETRY_BACKOFF_BASE_SECONDS": "0.01", "OUTBOX_RETRY_BACKOFF_MAX_SECONDS": "0.05"}
RMA_VARS = {"rma_number": "RMA-1", "serial_number": "SN-1", "status": "ouvert", "link_tracking": "https://rgz.bj/rma/1"}
CUTOVER_VARS = {"reseller_name": "Tech Connect SA", "items_done": "28", "items_total": "40",
                "link_portal": "https://admin-rgz.duckdns.org"}
LANES = ("urgent", "default", "bulk")


@pytest.fixture(autouse=True)
def same_backend_as_the_workers(settings):
    """The sending side uses the workers' backend, as in production (one settings file), so
    messages are written with their prebuilt bytes, which the workers send as they are."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


# --- what arrived, what the workers did ------------------------------------------------------

def arrivals(*servers) -> Counter:
    """How many times each message arrived, by `X-Notification-Id`, over all `servers`."""
    return Counter(r.notification_id for server in servers for r in list(server.received))


def ids_of(messages) -> list[str]:
    return [str(message.pk) for message in messages]


def rows(ids):
    return Message.objects.filter(pk__in=list(ids))


def count(status: str, **filters) -> int:
    """Messages in `status` (every row of the test's database is the test's own): a cheap
    poll, where `rows(ids)` would send thousands of ids each time."""
    return Message.objects.filter(status=status, **filters).count()


DRAIN_RESULT = re.compile(r"Task notifications\.drain_lane\[[^\]]+\] succeeded in [^:]+: (\{.*\})")
TASK_RECEIVED = re.compile(r"Task \S+\[[0-9a-f-]+\] received")
TASK_FINISHED = re.compile(r"Task \S+\[[0-9a-f-]+\] (?:succeeded|raised|failed|retry)")


def drained(worker, outcome: str = "sent") -> int:
    """How many messages this worker's drains counted as `outcome`, from its log."""
    return sum(ast.literal_eval(found).get(outcome, 0) for found in DRAIN_RESULT.findall(worker.log()))


def settle(broker, *workers, timeout: float = 60.0) -> None:
    """Wait until no work is left anywhere: every lane's queue empty in the broker, and every
    task each worker took finished. Then what arrived is all that will arrive."""
    import redis

    client = redis.Redis(port=broker.port)

    def idle() -> bool:
        if any(client.llen(lane) for lane in LANES):
            return False
        return all(len(TASK_RECEIVED.findall(log)) == len(TASK_FINISHED.findall(log))
                   for log in (worker.log() for worker in workers))

    # Twice in a row, a little apart: a task may be between the broker and a worker's log.
    assert wait_until(lambda: idle() and not wait_until(lambda: not idle(), 0.3), timeout), [w.log() for w in workers]


def more_sweeps(worker, times: int = 3, timeout: float = 30.0) -> None:
    """Let beat run the sweep `times` more times in `worker`."""
    seen = worker.sweeps()
    assert wait_until(lambda: worker.sweeps() >= seen + times, timeout), worker.log()


def assert_sent_once(ids, *servers) -> None:
    """Each message arrived exactly once and its row says so: sent, one attempt, recorded."""
    assert arrivals(*servers) == Counter({message_id: 1 for message_id in ids})
    assert Counter(rows(ids).values_list("status", "attempts")) == Counter({(Status.SENT, 1): len(ids)})
    attempts = DeliveryAttempt.objects.filter(message_id__in=list(ids))
    assert Counter(attempts.values_list("number", "outcome")) == Counter({(1, "sent"): len(ids)})


# --- 1. concurrent workers -----------------------------------------------------------------------

def send_independently(total: int, *, senders: int = 4) -> list[str]:
    """`total` sends of one recipient each, as the web processes of a busy service make them:
    one `send_mail_template` call, one transaction and one wake-up per message, from
    `senders` threads at once (each on its own database connection)."""
    ids: list[list[str]] = [[] for _ in range(senders)]

    def send(part: int) -> None:
        try:
            for index in range(part, total, senders):
                [message] = send_mail_template("rma_confirmation", f"reseller{index}@techconnect.bj", RMA_VARS)
                ids[part].append(str(message.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(part,)) for part in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sent = [message_id for part in ids for message_id in part]
    assert len(sent) == total, "a sender thread failed: see its traceback above"
    return sent


def test_two_workers_drain_independent_sends_and_each_message_arrives_exactly_once(
    default_templates, start_worker, smtp_server, broker
):
    """The table is the queue: two workers claim the same lane at once (SKIP LOCKED), each
    taking rows the other does not, and every send's wake-up is served by one or the other."""
    require_postgres()
    workers = [start_worker(name=name, wait=False) for name in ("w1", "w2")]
    for worker in workers:
        worker.wait_ready()  # both idle before the first send

    ids = send_independently(INDEPENDENT_SENDS)

    assert wait_until(lambda: count(Status.SENT) == len(ids), 60 + len(ids) / 20), [w.log() for w in workers]
    settle(broker, *workers)
    assert_sent_once(ids, smtp_server)
    by_worker = [drained(worker) for worker in workers]
    assert sum(by_worker) == len(ids)  # no drain counted a message another drain sent too
    assert all(by_worker), f"both workers took work: {by_worker}"


# --- 2. an outage of the SMTP server ---------------------------------------------------------------

def test_an_smtp_outage_well_past_the_longest_backoff_loses_nothing_and_costs_no_attempt(
    default_templates, start_worker, smtp_server, start_smtp_server, broker
):
    worker = start_worker(beat=True, env=FAST_RETRIES)
    before = ids_of(send_mail_template("rma_confirmation", [f"before{i}@techconnect.bj" for i in range(3)], RMA_VARS))
    assert wait_until(lambda: rows(before).filter(status=Status.SENT).count() == 3), worker.log()

    smtp_server.stop()  # drops the connection the worker kept open, and refuses new ones
    during = [
        str(send_mail_template("rma_confirmation", f"reseller{i}@techconnect.bj", RMA_VARS)[0].pk) for i in range(20)
    ]
    max_attempts = EmailTemplate.objects.get(key="rma_confirmation").max_attempts
    outages = lambda: worker.log().count("Outage on the default lane")  # noqa: E731
    # Lane rests of at most 50 ms, each ended by a sweep that finds the server down again:
    # far more outages than the messages have attempts.
    # ... and every row met the outage at least once (on a loaded machine the outages could pile
    # up on the rows claimed first before the last ones were claimed).
    met_it = lambda: not rows(during).filter(status=Status.QUEUED, error_message="").exists()  # noqa: E731
    assert wait_until(lambda: outages() >= 3 * max_attempts + 5 and met_it(), 60), worker.log()

    assert not DeliveryAttempt.objects.filter(message_id__in=during).exists()  # no attempt was used
    assert set(rows(during).values_list("status", flat=True)) <= {Status.QUEUED, Status.SENDING}
    queued = rows(during).filter(status=Status.QUEUED)
    assert set(queued.values_list("attempts", flat=True)) == {0}
    assert all(error.startswith("Not attempted: ") for error in queued.values_list("error_message", flat=True))

    restarted = start_smtp_server(port=smtp_server.port)  # the same server, back
    assert wait_until(lambda: rows(during).filter(status=Status.SENT).count() == 20, 60), worker.log()
    more_sweeps(worker)
    settle(broker, worker)
    assert arrivals(smtp_server) == Counter({message_id: 1 for message_id in before})
    assert_sent_once(before + during, smtp_server, restarted)


# --- 3. failures of a message: transient, permanent, unknown -------------------------------------

GREYLISTED, GONE = "greylisted@techconnect.bj", "gone@techconnect.bj"


def test_a_451_every_time_fails_after_exactly_max_attempts_a_550_after_one_while_the_others_arrive(
    default_templates, start_worker, start_smtp_server, broker, settings
):
    server = start_smtp_server(rcpt_replies={GREYLISTED: "451 4.7.1 Greylisted, try again later",
                                             GONE: "550 5.1.1 No such user here"})
    worker = start_worker(smtp=server, beat=True, env=FAST_RETRIES)  # the sweep brings the retries back
    EmailTemplate.objects.filter(key="rma_confirmation").update(max_attempts=4)
    settings.OUTBOX_RETRY_MAX_ATTEMPTS = 2  # what a message without a template gets

    [templated] = send_mail_template("rma_confirmation", GREYLISTED, RMA_VARS)
    [simple] = send_simple_mail(GREYLISTED, "Relance", "Votre dossier est en cours.")
    [gone] = send_mail_template("rma_confirmation", GONE, RMA_VARS)
    others = ids_of(send_mail_template("rma_confirmation", [f"reseller{i}@techconnect.bj" for i in range(5)],
                                       RMA_VARS))
    assert (templated.max_attempts, simple.max_attempts) == (4, 2)

    failing = [templated.pk, simple.pk, gone.pk]
    assert wait_until(lambda: rows(failing).filter(status=Status.FAILED).count() == 3, 60), worker.log()
    assert wait_until(lambda: rows(others).filter(status=Status.SENT).count() == 5, 60), worker.log()
    more_sweeps(worker)  # a failed message stays failed, whatever the sweep does
    settle(broker, worker)

    for message, spent in ((templated, 4), (simple, 2)):
        message.refresh_from_db()
        assert (message.status, message.attempts) == (Status.FAILED, spent)
        assert "451" in message.error_message and f"(after {spent} of {spent} attempts)" in message.error_message
        attempts = list(DeliveryAttempt.objects.filter(message=message).order_by("number"))
        assert [(a.number, a.outcome) for a in attempts] == [(n, "transient") for n in range(1, spent + 1)]
        assert all("451 4.7.1 Greylisted" in a.error for a in attempts), [a.error for a in attempts]
        assert {a.sent_via for a in attempts} == {f"{server.host}:{server.port}"}  # who refused it
        assert all(a.started_at <= a.finished_at for a in attempts)
        assert [a.started_at for a in attempts] == sorted(a.started_at for a in attempts)
    gone.refresh_from_db()
    assert (gone.status, gone.attempts) == (Status.FAILED, 1)
    [attempt] = DeliveryAttempt.objects.filter(message=gone)
    assert attempt.outcome == "permanent" and "550 5.1.1 No such user here" in attempt.error
    assert attempt.sent_via == f"{server.host}:{server.port}"

    assert_sent_once(others, server)  # the refusals never held the others up, and nothing else arrived
    assert not [r for r in server.received if {GREYLISTED, GONE} & set(r.rcpt_tos)]


LATE_ANSWER = 4  # seconds: after the workers' SMTP_TIMEOUT_SECONDS (2)


def test_a_message_whose_data_was_never_answered_arrives_once_and_is_never_sent_again(
    default_templates, start_worker, start_smtp_server, broker
):
    """The server takes the whole message, then answers only after the client's timeout: it may
    have delivered it, so sending it again (django-post_office #479) could deliver it twice."""
    server = start_smtp_server(delay=LATE_ANSWER)
    worker = start_worker(smtp=server, beat=True, env={"SMTP_TIMEOUT_SECONDS": "2", **FAST_RETRIES})

    [message] = send_mail_template("rma_confirmation", "reseller@techconnect.bj", RMA_VARS)
    assert wait_until(lambda: rows([message.pk]).filter(status=Status.FAILED).exists(), 60), worker.log()
    assert message.max_attempts > 1  # retries were allowed: the unknown outcome is what stops them
    more_sweeps(worker, 5)
    time.sleep(LATE_ANSWER)  # past the server's late answer too
    settle(broker, worker)

    assert arrivals(server) == Counter({str(message.pk): 1})
    message.refresh_from_db()
    assert (message.status, message.attempts) == (Status.FAILED, 1)
    assert "the outcome is unknown" in message.error_message, message.error_message
    [attempt] = DeliveryAttempt.objects.filter(message=message)
    assert attempt.outcome == "unknown" and "the outcome is unknown" in attempt.error


# --- 4. the broker down while the API accepts mail --------------------------------------------

def test_sends_through_the_api_while_the_broker_is_down_are_accepted_and_each_delivered_once_it_is_back(
    default_templates, broker, start_worker, smtp_server
):
    worker = start_worker(beat=True)
    api = ApiClient(create_key(make_user("services", SENDERS)))

    broker.stop()
    ids = []
    for index in range(API_SENDS):
        response = api.post("/api/v1/email/send", {
            "to": f"reseller{index}@techconnect.bj", "template_key": "rma_confirmation", "variables": RMA_VARS,
        })
        assert response.status_code == 201, response.content
        ids += [item["id"] for item in response.json()["items"]]
    assert len(ids) == API_SENDS
    assert set(rows(ids).values_list("status", flat=True)) == {Status.QUEUED}  # kept, though nothing was published
    assert smtp_server.received == []

    broker.start()  # empty: the wake-ups published meanwhile were never there
    # The prober of this process and the worker, reconnected, wake the lane (the sweep may too).
    assert wait_until(lambda: count(Status.SENT) == len(ids), 120), worker.log()
    settle(broker, worker)
    assert_sent_once(ids, smtp_server)


# --- 5. scheduled and cancelled ---------------------------------------------------------------

SCHEDULE_AHEAD = timedelta(seconds=3)


def test_a_scheduled_message_waits_for_its_time_while_the_sweep_runs_and_a_cancelled_one_never_leaves(
    default_templates, start_worker, smtp_server, broker
):
    worker = start_worker(beat=True)
    api = ApiClient(create_key(make_user("services", SENDERS)))
    [now] = send_mail_template("rma_confirmation", "now@techconnect.bj", RMA_VARS)
    assert wait_until(lambda: arrivals(smtp_server)[str(now.pk)] == 1), worker.log()  # the worker is delivering

    send_at = timezone.now() + SCHEDULE_AHEAD
    [scheduled] = send_mail_template("rma_confirmation", "later@techconnect.bj", RMA_VARS, send_at=send_at)
    response = api.post("/api/v1/email/send", {"to": "never@techconnect.bj", "template_key": "rma_confirmation",
                                               "variables": RMA_VARS, "send_at": send_at.isoformat()})
    assert response.status_code == 201, response.content
    [cancelled] = rows([item["id"] for item in response.json()["items"]])
    assert (scheduled.status, scheduled.next_attempt_at) == (Status.SCHEDULED, send_at)
    assert (cancelled.status, cancelled.next_attempt_at) == (Status.SCHEDULED, send_at)
    response = api.post(f"/api/v1/email/messages/{cancelled.pk}/cancel")
    assert response.status_code == 200 and response.json()["status"] == Status.CANCELLED, response.content

    sweeps_before_due = 0
    first = worker.sweeps()
    while timezone.now() < send_at - timedelta(seconds=0.3):
        assert Message.objects.get(pk=scheduled.pk).status == Status.SCHEDULED
        assert str(scheduled.pk) not in arrivals(smtp_server)
        sweeps_before_due = worker.sweeps() - first
        time.sleep(0.1)
    assert sweeps_before_due >= 2, "the sweep ran while the message was not yet due"

    assert wait_until(lambda: arrivals(smtp_server)[str(scheduled.pk)] == 1, 60), worker.log()
    [landed] = [r for r in smtp_server.received if r.notification_id == str(scheduled.pk)]
    assert landed.at >= send_at.timestamp()  # never before its time
    # The lane's timer or the sweep's wake-up brought it (without beat: the timer, below).
    more_sweeps(worker)
    settle(broker, worker)

    assert_sent_once([str(now.pk), str(scheduled.pk)], smtp_server)
    scheduled.refresh_from_db()
    assert scheduled.sent_at >= send_at
    cancelled.refresh_from_db()
    assert (cancelled.status, cancelled.attempts) == (Status.CANCELLED, 0)
    assert not DeliveryAttempt.objects.filter(message=cancelled).exists()


# --- 6. urgent mail never waits behind bulk ----------------------------------------------------------

ONE_WORKER = {"all": ALL_LANES}
PER_LANE = {"urgent": "urgent", "default": "default", "bulk": "bulk"}


@pytest.mark.smtp_delay(0.003)  # a server slow enough that the bulk backlog outlasts the urgent send
@pytest.mark.parametrize("pools", [ONE_WORKER, PER_LANE], ids=["one-worker-all-lanes", "one-worker-per-lane"])
def test_an_urgent_message_arrives_while_bulk_ones_are_still_queued(
    default_templates, start_worker, smtp_server, broker, pools
):
    workers = {name: start_worker(name=name, queues=queues, wait=False) for name, queues in pools.items()}
    for worker in workers.values():
        worker.wait_ready()

    with transaction.atomic():  # one transaction: one wake-up of the bulk lane
        bulk = [
            str(message.pk)
            for start in range(0, BULK_QUEUED, 500)
            for result in send_batch("cutover_reminder", [
                {"to": f"reseller{index}@techconnect.bj", "variables": CUTOVER_VARS}
                for index in range(start, min(start + 500, BULK_QUEUED))
            ])
            for message in result.messages
        ]
    assert rows(bulk).filter(lane=Lane.BULK).count() == BULK_QUEUED
    assert wait_until(lambda: len(smtp_server.received) >= 20, 60), [w.log() for w in workers.values()]

    urgent = ids_of(send_mail_template("incident_alert_critical", "reseller@techconnect.bj", INCIDENT_VARS))
    assert len(urgent) == 2  # + the NOC
    logs = lambda: [w.log() for w in workers.values()]  # noqa: E731
    assert wait_until(lambda: all(arrivals(smtp_server)[u] for u in urgent), 60), logs()
    still_queued = count(Status.QUEUED, lane=Lane.BULK)

    assert still_queued > 0, f"the urgent message waited for the whole bulk backlog ({len(bulk)} messages)"
    arrived = arrivals(smtp_server)
    assert {message_id: arrived[message_id] for message_id in urgent} == {message_id: 1 for message_id in urgent}
    assert set(arrived) <= set(bulk + urgent) and max(arrived.values()) == 1  # nothing twice, nothing else
    assert wait_until(lambda: count(Status.SENT, lane=Lane.URGENT) == 2), logs()
    assert set(rows(urgent).values_list("attempts", flat=True)) == {1}
    if "urgent" in workers:  # lanes are strict: the urgent pool claimed urgent rows only
        assert drained(workers["urgent"]) == 2 and drained(workers["default"]) == 0, logs()


# --- 7. no wake-up lost: a backlog before the workers start, no beat (issue 17) --------------------

# 600 is the smallest size at which every configuration lost rows before the fix (issue 17's
# 2,000: NOTIF_TEST_BACKLOG=2000).
BACKLOG = int(os.environ.get("NOTIF_TEST_BACKLOG", "600"))
RELAY_DATA_SECONDS = 0.02  # a relay that answers DATA after 20 ms, as the issue measured


def wait_for_every_row_sent(total: int, workers, *, stall: float = 15.0) -> None:
    """Wait until `total` rows are sent; fail as soon as nothing moved for `stall` seconds while
    rows were left (a lane with due rows and no wake-up: only the sweep, not running, would
    ever take them)."""
    last, moved_at = -1, time.monotonic()
    while True:
        done = count(Status.SENT)
        if done >= total:
            return
        if done != last:
            last, moved_at = done, time.monotonic()
        waiting = dict(Message.objects.exclude(status=Status.SENT).values_list("status").annotate(
            n=models.Count("pk")))
        assert time.monotonic() - moved_at < stall, (
            f"{done} of {total} sent, then nothing for {stall:g} s; left: {waiting}\n"
            + "\n".join(worker.log()[-3000:] for worker in workers))
        time.sleep(0.2)


BACKLOG_POOLS = {"prefork-c2": ("prefork", 2), "prefork-c4": ("prefork", 4), "threads-c4": ("threads", 4)}


@pytest.mark.smtp_delay(RELAY_DATA_SECONDS)
@pytest.mark.parametrize("pool", list(BACKLOG_POOLS))
def test_a_backlog_queued_before_the_worker_starts_is_all_delivered_once_without_beat(
    default_templates, start_worker, smtp_server, broker, pool
):
    """The README's recipe: sends queued while no worker runs (their wake-ups coalesced by the
    mark), then one worker at `-c 2`, `-c 4` or with threads, and no beat: every message
    arrives exactly once, none left for a sweep that never comes."""
    ids = send_independently(BACKLOG)
    pool_name, concurrency = BACKLOG_POOLS[pool]
    worker = start_worker(pool=pool_name, concurrency=concurrency)

    wait_for_every_row_sent(len(ids), [worker])
    settle(broker, worker)
    assert_sent_once(ids, smtp_server)
    assert worker.sweeps() == 0 and "sweep_stranded_messages[" not in worker.log()  # no beat: no sweep ran


@pytest.mark.smtp_delay(RELAY_DATA_SECONDS)
def test_two_worker_processes_drain_a_backlog_and_the_sends_arriving_meanwhile_each_once_without_beat(
    default_templates, start_worker, smtp_server, broker
):
    """Two worker processes (`-c 2` each, as the README runs them) start on a backlog while more
    independent sends keep arriving: every message arrives once, and no sweep is needed."""
    backlog = send_independently(BACKLOG // 2)
    workers = [start_worker(name=name, pool="prefork", concurrency=2, wait=False) for name in ("w1", "w2")]
    for worker in workers:
        worker.wait_ready()
    meanwhile = send_independently(BACKLOG // 2)  # while the backlog drains

    wait_for_every_row_sent(len(backlog) + len(meanwhile), workers)
    settle(broker, *workers)
    assert_sent_once(backlog + meanwhile, smtp_server)
    assert all(drained(worker) for worker in workers), [drained(worker) for worker in workers]


# --- 8. the broker down: off the send's path, drained as soon as it is back (issue 17) -----------

BROKER_DOWN_SENDS = int(os.environ.get("NOTIF_TEST_BROKER_DOWN_SENDS", "200"))
RECONNECT_BOUND = 0.5  # the worker's BROKER_RECONNECT_MAX_SECONDS in the broker-down test
# Celery's consumer, each time it cannot reach the broker: "Trying again in 2.00 seconds... (1/100)" (a wait
# under a second is "Trying again now...").
RECONNECT_WAIT = re.compile(r"Trying again in (\d+(?:\.\d+)?) seconds")


class BrokerReach:
    """Every attempt of this process to reach `port` (a TCP connect), with the thread it came from."""

    def __init__(self, port: int, monkeypatch) -> None:
        import socket

        self.port = port
        self.attempts: list[str] = []
        connect = socket.socket.connect
        reach = self

        def spied(sock, address):
            if isinstance(address, tuple) and len(address) >= 2 and address[1] == reach.port:
                reach.attempts.append(threading.current_thread().name)
            return connect(sock, address)

        monkeypatch.setattr(socket.socket, "connect", spied)

    def from_this_thread(self) -> int:
        return self.attempts.count(threading.current_thread().name)


def test_with_the_broker_down_sends_commit_without_trying_it_and_are_delivered_without_the_sweep_once_back(
    default_templates, start_worker, smtp_server, broker, monkeypatch
):
    """The first send finds the broker down (a bounded try); from then on it is known down and no
    send tries to reach it, on the calling thread or at all, until this process's prober finds it
    back. Then the wake-ups owed are published, the worker, reconnected, wakes its lanes, and
    everything is delivered with no beat running."""
    from notifications.core.outbox import wakeups

    worker = start_worker(pool="prefork", concurrency=2, env={"BROKER_RECONNECT_MAX_SECONDS": str(RECONNECT_BOUND)})
    publishes: list[str] = []
    publish = wakeups._publish
    monkeypatch.setattr(wakeups, "_publish",
                        lambda *a, **k: publishes.append(threading.current_thread().name) or publish(*a, **k))
    reach = BrokerReach(broker.port, monkeypatch)

    broker.stop()
    [first] = send_mail_template("rma_confirmation", "first@techconnect.bj", RMA_VARS)
    assert wakeups.known_down() and publishes == [threading.current_thread().name]
    tried_by_the_first = reach.from_this_thread()
    assert 1 <= tried_by_the_first <= 3  # the mark's SET, the publish and its one retry

    ids = [str(first.pk)] + ids_of(
        message for index in range(BROKER_DOWN_SENDS - 1)
        for message in send_mail_template("rma_confirmation", f"reseller{index}@techconnect.bj", RMA_VARS))
    assert count(Status.QUEUED) == BROKER_DOWN_SENDS  # every send committed
    # Structurally: while it was known down no send published or even connected to the broker.
    assert publishes == [threading.current_thread().name]
    assert reach.from_this_thread() == tried_by_the_first

    broker.start()  # empty: nothing published meanwhile was ever there
    wait_for_every_row_sent(len(ids), [worker], stall=30)
    settle(broker, worker)
    assert_sent_once(ids, smtp_server)
    assert worker.log().count("Connected: woke the") >= 2, worker.log()  # at start, and when it reconnected
    assert "sweep_stranded_messages[" not in worker.log()
    # The worker's reconnect backoff is bounded by its setting (kombu's own waits 2 s, then 4 s, ... 30 s):
    # it found the broker away, and no wait it announced was longer than the bound.
    log = worker.log()
    waits = [float(seconds) for seconds in RECONNECT_WAIT.findall(log)]
    assert "consumer: Cannot connect to" in log and max(waits, default=0.0) <= RECONNECT_BOUND, (waits, log[-3000:])


# --- 9. leases: a slow worker keeps its rows, a killed one's come back (issue 17) ---------------

LEASE = {"OUTBOX_LEASE_SECONDS": "1.5", "OUTBOX_SWEEP_SECONDS": "0.2"}
SLOW_DATA = 2.5  # seconds: longer than the lease


def test_a_worker_alive_but_slow_keeps_its_rows_past_the_lease_and_nothing_is_sent_twice(
    default_templates, start_worker, start_smtp_server, broker
):
    """A relay that holds DATA for longer than the lease: the drain's process renews the lease of
    the rows it holds, so the sweep, running every 0.2 s in another worker, never takes them."""
    server = start_smtp_server(delay=SLOW_DATA)
    slow = start_worker(name="slow", smtp=server, env={**LEASE, "SMTP_TIMEOUT_SECONDS": "10",
                                                       "OUTBOX_DRAIN_MAX_SECONDS": "60"})
    ids = ids_of(send_mail_template("rma_confirmation", [f"reseller{i}@techconnect.bj" for i in range(2)],
                                    RMA_VARS))
    assert wait_until(lambda: len(server.received) >= 1, 30), slow.log()  # the slow drain holds both
    sweeper = start_worker(name="sweeper", smtp=server, beat=True, env=LEASE)
    more_sweeps(sweeper, 5)  # well past the lease, with the first DATA still unanswered

    assert wait_until(lambda: count(Status.SENT) == 2, 30), slow.log() + sweeper.log()
    more_sweeps(sweeper)
    settle(broker, slow, sweeper)
    assert_sent_once(ids, server)
    assert "claims of stopped workers released" not in sweeper.log()
    assert drained(slow) == 2 and drained(sweeper) == 0


@pytest.mark.smtp_delay(0.1)
def test_a_killed_worker_s_rows_come_back_after_the_lease_and_the_other_worker_delivers_them(
    default_templates, start_worker, smtp_server, broker
):
    """SIGKILL mid-drain: the rows it held go back after the lease (the sweep, in the other
    worker) and are delivered there. What arrives twice is at most what the relay had accepted
    and the dead worker had not recorded, counted at the sink."""
    ids = ids_of(send_mail_template("rma_confirmation", [f"reseller{i}@techconnect.bj" for i in range(30)],
                                    RMA_VARS))
    doomed = start_worker(name="doomed", env={**LEASE, "OUTBOX_DRAIN_MAX_SECONDS": "60"})
    assert wait_until(lambda: len(smtp_server.received) >= 12, 60), doomed.log()
    doomed.process.kill()
    doomed.process.wait(10)
    time.sleep(0.3)  # a DATA the relay was still answering lands
    accepted = {r.notification_id for r in list(smtp_server.received)}
    recorded = set(ids_of(rows(ids).filter(status=Status.SENT)))
    held = set(ids_of(rows(ids).filter(status=Status.SENDING)))
    assert held, "the worker died holding rows"

    other = start_worker(name="other", beat=True, env=LEASE)
    wait_for_every_row_sent(len(ids), [other], stall=30)
    settle(broker, other)
    arrived = arrivals(smtp_server)
    assert set(arrived) == set(ids)  # nothing lost
    twice = {message_id for message_id, times in arrived.items() if times > 1}
    assert twice <= accepted - recorded and max(arrived.values()) == 2, (twice, accepted - recorded)
    assert "claims of stopped workers released" in other.log()
    assert drained(other) >= len(held - accepted)  # what the dead worker never sent, the other did


def test_a_scheduled_message_leaves_on_its_lane_s_timer_at_its_time_without_beat(
    default_templates, start_worker, smtp_server, broker
):
    """A row due by the clock alone: the send's wake-up finds nothing due yet and sets the lane's
    timer for its time; no sweep runs, and it leaves then, not before."""
    worker = start_worker()
    send_at = timezone.now() + SCHEDULE_AHEAD
    [scheduled] = send_mail_template("rma_confirmation", "later@techconnect.bj", RMA_VARS, send_at=send_at)

    assert wait_until(lambda: arrivals(smtp_server)[str(scheduled.pk)] == 1, 30), worker.log()
    [landed] = smtp_server.received
    assert landed.at >= send_at.timestamp()  # never before its time
    settle(broker, worker)
    assert_sent_once([str(scheduled.pk)], smtp_server)
    assert worker.sweeps() == 0 and "sweep_stranded_messages[" not in worker.log()


def readme_worker_commands() -> list[list[str]]:
    """The README's worker lines ("Running workers with Redis"), as written, after `celery`."""
    import shlex

    from django.conf import settings

    readme = (settings.BASE_DIR / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Running workers with Redis", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    lines = [shlex.split(line) for line in block.splitlines() if line.startswith(".venv/bin/celery -A config worker")]
    return [line[1:] for line in lines]


@pytest.mark.smtp_delay(RELAY_DATA_SECONDS)
def test_the_readme_s_worker_recipe_as_written_delivers_a_backlog_on_every_lane_once_without_beat(
    default_templates, start_worker, smtp_server, broker
):
    """Issue 17's point 4: the README's three worker pools, each command run as printed (beat
    left out: nothing may wait for the sweep), on a backlog of every lane."""
    commands = readme_worker_commands()
    assert [command[command.index("-Q") + 1] for command in commands] == ["urgent", "default", "bulk"]
    per_lane = BACKLOG // 6
    ids = send_independently(per_lane)  # default
    ids += ids_of(message for index in range(per_lane // 2)  # urgent (each alert + the NOC)
                  for message in send_mail_template("incident_alert_critical", f"r{index}@techconnect.bj",
                                                    INCIDENT_VARS))
    with transaction.atomic():
        ids += [str(message.pk) for result in send_batch("cutover_reminder", [
            {"to": f"reseller{index}@techconnect.bj", "variables": CUTOVER_VARS} for index in range(per_lane)])
            for message in result.messages]
    assert set(Message.objects.values_list("lane", flat=True)) == set(LANES)

    workers = [start_worker(name=command[command.index("-Q") + 1], argv=command, wait=False) for command in commands]
    for worker in workers:
        worker.wait_ready()
    wait_for_every_row_sent(len(ids), workers)
    settle(broker, *workers)
    assert_sent_once(ids, smtp_server)
    assert all(worker.sweeps() == 0 for worker in workers)
