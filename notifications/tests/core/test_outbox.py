"""The outbox: a drain claims the due rows of its lane in batches, sends them, records them.

The messages are queued inside the test's transaction, so their on-commit wake-up never
runs; the lane is then drained as the `drain_lane` task would, to a real SMTP server.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from notifications.models import DeliveryAttempt, Message, Lane, Status
from notifications.core import channels
from notifications.core.outbox import lifecycle
from notifications.core.outbox import drain
from notifications.channels.email.sending import send_mail_template
from notifications.tests.support.concurrency import concurrently
from notifications.tests.support.files import make_pdf
from notifications.tests.support.payloads import INCIDENT_VARS, INVOICE_VARS
from notifications.tests.support.services import require_postgres

pytestmark = pytest.mark.django_db

PDF = make_pdf()


def queue_invoices(count: int, *, first: int = 0) -> list[Message]:
    return [
        send_mail_template("billing_invoice_monthly", f"reseller{index}@techconnect.bj", INVOICE_VARS,
                           attachments=[("facture.pdf", PDF, "application/pdf")])[0]
        for index in range(first, first + count)
    ]


def queries_of_a_drain(count: int) -> int:
    messages = queue_invoices(count, first=1000 * count)
    lane = messages[0].lane
    with CaptureQueriesContext(connection) as captured:
        counts = drain.drain_lane(lane=lane)
    assert counts == {"sent": count}
    return len(captured)


def test_a_drain_claims_sends_and_records_a_batch_in_the_same_few_queries_whatever_its_size(
    default_templates, smtp_backend
):
    assert queries_of_a_drain(3) == queries_of_a_drain(30)  # per batch, whatever its size: the claim, the outcomes (UPDATE, INSERT), the suppression check, the early events


def test_each_message_is_sent_once_with_its_own_provider_id_and_attempt(default_templates, smtp_backend):
    messages = queue_invoices(10)

    assert drain.drain_lane(lane=messages[0].lane) == {"sent": 10}

    received = {r.rcpt_tos[0]: r for r in smtp_backend.wait_for(10)}
    assert sorted(received) == sorted(m.address for m in messages)
    for message in messages:
        message.refresh_from_db()
        mail = received[message.address]
        assert message.status == Status.SENT and message.attempts == 1 and message.sent_at is not None
        assert message.provider_message_id == mail.message["Message-ID"]
        assert mail.message["X-Notification-Id"] == str(message.pk)
        assert message.sent_via == f"{smtp_backend.host}:{smtp_backend.port}"
        [pdf] = list(mail.message.iter_attachments())
        assert pdf.get_content() == PDF
        [attempt] = message.delivery_attempts.all()
        assert (attempt.number, attempt.outcome, attempt.sent_via) == (1, "sent", message.sent_via)
        assert attempt.started_at <= attempt.finished_at
    assert drain.drain_lane(lane=messages[0].lane) == {}  # nothing due is left
    assert len(smtp_backend.received) == 10


def test_a_drain_claims_in_batches_of_the_lane_size_oldest_due_first(default_templates, smtp_backend, settings):
    settings.OUTBOX_BATCH_SIZE = 4
    messages = queue_invoices(10)
    with CaptureQueriesContext(connection) as captured:
        drain.drain_lane(lane=messages[0].lane)
    claims = [q["sql"] for q in captured if q["sql"].startswith("UPDATE") and "RETURNING" in q["sql"]]
    if connection.vendor in lifecycle.RETURNING_VENDORS:
        assert len(claims) == 3  # 4 + 4 + 2: the short third claim says the lane is empty
    order = [r.rcpt_tos[0] for r in smtp_backend.wait_for(10)]
    assert order == [m.address for m in messages]


def test_lanes_are_strict_an_urgent_drain_takes_urgent_rows_only(default_templates, smtp_backend, settings):
    invoices = queue_invoices(3)
    urgent = send_mail_template("incident_alert_critical", "reseller@techconnect.bj", INCIDENT_VARS)
    assert {m.lane for m in invoices} == {Lane.DEFAULT} and {m.lane for m in urgent} == {Lane.URGENT}

    assert drain.drain_lane(lane=Lane.URGENT) == {"sent": 2}

    assert sorted(r.rcpt_tos[0] for r in smtp_backend.wait_for(2)) == ["noc@rgz.bj", "reseller@techconnect.bj"]
    assert set(Message.objects.filter(lane=Lane.DEFAULT).values_list("status", flat=True)) == {Status.QUEUED}
    assert drain.batch_size(Lane.URGENT) == settings.OUTBOX_BATCH_SIZE_URGENT == 10


def test_rows_not_yet_due_are_not_claimed(default_templates, smtp_backend):
    now_due, later = queue_invoices(2)
    Message.objects.filter(pk=later.pk).update(next_attempt_at=timezone.now() + timedelta(minutes=5))

    assert drain.drain_lane(lane=now_due.lane) == {"sent": 1}
    assert Message.objects.get(pk=later.pk).status == Status.QUEUED


def test_every_wake_up_claims_a_late_one_finds_nothing_with_one_query(default_templates, smtp_backend):
    """No wake-up is skipped on what the process remembers of the lane (issue 17): a late one
    costs one claim that finds nothing."""
    [message] = queue_invoices(1)
    assert drain.drain_lane(lane=message.lane) == {"sent": 1}

    with CaptureQueriesContext(connection) as late:
        assert drain.drain_lane(lane=message.lane) == {}
    assert len(late) == 1


@pytest.mark.smtp_delay(0.03)
@pytest.mark.django_db(transaction=True)
def test_rows_a_drain_hands_back_are_woken_after_the_write_even_when_another_drain_took_the_last_wake_up(
    default_templates, smtp_backend, worker_like_drain, settings, monkeypatch
):
    """Issue 17's lost wake-up. A worker's drain on PostgreSQL claims the next batch ahead while
    it sends; past its bound it hands back the unsent rest, wakes the lane, then hands back the
    batch claimed ahead. Here every wake-up is taken at once by another drain (a thread with
    its own connection, as another worker process would): that drain claims before the batch
    claimed ahead is back, finds the rest, comes back short and ends. The rows handed back after
    it must have a wake-up of their own, or they wait for a sweep that may never run."""
    import threading

    from notifications.core.outbox import wakeups

    require_postgres()
    settings.OUTBOX_DRAIN_MAX_SECONDS = 0.05  # a batch of 4 at 30 ms a message overruns it twice
    messages = queue_invoices(12)
    taken: list[dict] = []

    def taken_at_once_by_another_drain(lane, **options):
        def other() -> None:
            try:
                taken.append(drain.drain_lane(lane=lane))
            finally:
                connection.close()

        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
        return True

    monkeypatch.setattr(wakeups, "_publish", taken_at_once_by_another_drain)
    first = drain.drain_lane(lane=messages[0].lane)

    assert first["released"] > 0 and taken, (first, taken)  # the interleaving happened
    assert Message.objects.filter(status=Status.QUEUED).count() == 0, (first, taken)
    assert_sent = Message.objects.filter(pk__in=[m.pk for m in messages], status=Status.SENT)
    assert assert_sent.count() == 12
    assert len(smtp_backend.wait_for(12)) == 12


def test_a_drain_past_its_time_bound_hands_the_rest_back_uncounted_and_wakes_its_lane_again(
    default_templates, smtp_backend, settings, monkeypatch
):
    """Each drain sends at least one message, so even a bound of 0 moves the lane forward."""
    from config.celery import app

    settings.OUTBOX_DRAIN_MAX_SECONDS = 0
    monkeypatch.setitem(app.conf, "task_always_eager", False)  # wake-ups go to the in-memory broker
    messages = queue_invoices(3)

    total = {"sent": 0, "released": 0}
    for _ in range(3):
        counts = drain.drain_lane(lane=messages[0].lane)
        for key in total:
            total[key] += counts.get(key, 0)
    assert total == {"sent": 3, "released": 3}  # 2 handed back, then 1
    assert len(smtp_backend.wait_for(3)) == 3
    rows = Message.objects.filter(pk__in=[m.pk for m in messages])
    assert set(rows.values_list("status", "attempts")) == {(Status.SENT, 1)}  # a hand-back is not an attempt


@pytest.mark.smtp_delay(0.03)
def test_a_batch_overrunning_its_bound_hands_back_its_unsent_rest_and_wakes_the_lane_after_that_write(
    default_templates, smtp_backend, settings, monkeypatch
):
    """Issue 17, point 1 of ARCHITECTURE's argument: a batch still on the wire a whole bound past
    the drain's bound hands its unsent rest back, and that write is followed by a wake-up of the
    lane (the drain then ends): without it, the rows would wait for the sweep."""
    from config.celery import app
    from notifications.core.outbox import wakeups

    settings.OUTBOX_DRAIN_MAX_SECONDS = 0.05  # handed back from 0.1 s: the 5th message at 30 ms each
    monkeypatch.setitem(app.conf, "task_always_eager", False)  # a worker's bounded drain
    monkeypatch.setattr(drain, "_pace", {})  # no pace learnt by earlier tests: the whole batch is claimed
    messages = queue_invoices(8)
    lane = messages[0].lane
    woken: list[tuple[str, int]] = []

    def publish(lane, **options):  # what was queued when the wake-up left
        woken.append((lane, Message.objects.filter(status=Status.QUEUED).count()))
        return True

    monkeypatch.setattr(wakeups, "_publish", publish)
    counts = drain.drain_lane(lane=lane)

    assert counts["released"] > 0 and counts["sent"] + counts["released"] == 8, counts
    assert woken == [(lane, counts["released"])]  # one wake-up, after the rows were back


def test_a_test_key_message_in_a_batch_is_simulated_and_never_reaches_the_server(default_templates, smtp_backend):
    real, simulated = queue_invoices(2)
    Message.objects.filter(pk=simulated.pk).update(is_test=True)

    assert drain.drain_lane(lane=real.lane) == {"sent": 1, "simulated": 1}

    assert [r.rcpt_tos[0] for r in smtp_backend.wait_for(1)] == [real.address]
    assert Message.objects.get(pk=simulated.pk).status == Status.DELIVERED
    assert Message.objects.get(pk=real.pk).status == Status.SENT
    assert DeliveryAttempt.objects.filter(message=simulated).count() == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("round_", range(5))
def test_one_claim_wins_when_four_workers_claim_one_due_message_at_once(default_templates, round_):
    """The guarantee every delivery rests on, raced for real on PostgreSQL."""
    require_postgres()
    [message] = queue_invoices(1)  # delivered at once by the eager wake-up: queue it again
    Message.objects.filter(pk=message.pk).update(status=Status.QUEUED, attempts=0)

    results = concurrently(4, lambda: lifecycle.claim_due(lane=message.lane, limit=5))

    assert sorted(len(r) for r in results) == [0, 0, 0, 1], results
    assert Message.objects.get(pk=message.pk).attempts == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("round_", range(3))
def test_concurrent_drains_split_the_due_rows_without_waiting_on_each_other(default_templates, round_):
    """SKIP LOCKED: four claims of 8 over 20 due rows take each row once, and none blocks."""
    require_postgres()
    messages = queue_invoices(20)
    ids = [m.pk for m in messages]
    Message.objects.filter(pk__in=ids).update(status=Status.QUEUED, attempts=0)

    results = concurrently(4, lambda: lifecycle.claim_due(lane=messages[0].lane, limit=8))

    assert all(isinstance(r, list) for r in results), results
    claimed = [message.pk for result in results for message in result]
    assert len(claimed) == len(set(claimed)) == 20  # all of them, none twice
    assert set(Message.objects.filter(pk__in=ids).values_list("status", "attempts")) == {(Status.SENDING, 1)}


@pytest.fixture
def worker_like_drain(settings, monkeypatch):
    """A drain as a worker runs it: bounded (wake-ups to the in-memory broker), outside any
    transaction of the caller's; the recorder thread and its connection closed afterwards."""
    from config.celery import app

    monkeypatch.setitem(app.conf, "task_always_eager", False)  # the sends' wake-ups go to the in-memory broker
    settings.OUTBOX_BATCH_SIZE = 4
    yield
    drain.close_recorder()


@pytest.mark.django_db(transaction=True)
def test_a_worker_s_drain_records_each_batch_on_the_recorder_s_connection_in_order(
    default_templates, smtp_backend, worker_like_drain, monkeypatch
):
    """On PostgreSQL a worker's drain hands each batch's outcomes to its recorder thread, which
    writes them on a connection of its own while the next batch is sent; all are committed
    when the drain returns, batch after batch in the order they were sent."""
    import threading

    require_postgres()
    messages = queue_invoices(10)
    recorded: list[tuple[str, list]] = []
    record_sent = lifecycle.record_sent

    def spy(outcomes):
        recorded.append((threading.current_thread().name, [outcome.message_id for outcome in outcomes]))
        return record_sent(outcomes)

    monkeypatch.setattr(lifecycle, "record_sent", spy)
    assert drain.drain_lane(lane=messages[0].lane) == {"sent": 10}

    assert [len(ids) for _, ids in recorded] == [4, 4, 2]
    assert all(name.startswith("outbox-recorder") for name, _ in recorded), recorded
    arrival_order = [r.notification_id for r in smtp_backend.wait_for(10)]
    assert [str(pk) for _, ids in recorded for pk in ids] == arrival_order
    rows = Message.objects.filter(pk__in=[m.pk for m in messages])
    assert set(rows.values_list("status", "attempts")) == {(Status.SENT, 1)}
    assert DeliveryAttempt.objects.filter(message__in=messages, outcome="sent").count() == 10


@pytest.mark.django_db(transaction=True)
def test_when_the_recorder_fails_the_drain_stops_and_what_it_sent_stays_sending_for_the_sweep(
    default_templates, smtp_backend, worker_like_drain, monkeypatch
):
    """At most the batch being recorded and the one on the wire are left unrecorded: the
    drain raises at its next hand-over and claims nothing more; those rows stay `sending`
    (the sweep releases them after their lease, at least once), the rest stay queued."""
    require_postgres()
    messages = queue_invoices(10)

    def broken(outcomes):
        raise RuntimeError("the recorder's database went away")

    monkeypatch.setattr(lifecycle, "record_sent", broken)
    with pytest.raises(RuntimeError, match="went away"):
        drain.drain_lane(lane=messages[0].lane)

    assert len(smtp_backend.wait_for(8)) == 8
    rows = Message.objects.filter(pk__in=[m.pk for m in messages])
    statuses = sorted(rows.values_list("status", flat=True))
    assert statuses == [Status.QUEUED] * 2 + [Status.SENDING] * 8
    assert not DeliveryAttempt.objects.filter(message__in=messages).exists()


@pytest.mark.django_db(transaction=True)
def test_an_outage_in_a_worker_s_drain_hands_back_the_batch_claimed_ahead_uncounted_and_the_lane_rests(
    default_templates, smtp_backend, worker_like_drain, monkeypatch
):
    """The recorder claims batch 2 while batch 1 is sent; the server becomes unreachable in
    batch 2: its unsent rest and batch 3, claimed ahead meanwhile, go back to `queued`
    without an attempt, due when the lane's rest ends; the sent ones are recorded."""
    from notifications.exceptions import ServerUnreachable

    require_postgres()
    messages = queue_invoices(12)
    provider = channels.get("email").provider
    send_one, calls = provider.send_one, []

    def failing_from_the_sixth(message):
        calls.append(message.pk)
        if len(calls) > 5:
            raise ServerUnreachable("sink", ConnectionRefusedError("refused"))
        return send_one(message)

    monkeypatch.setattr(provider, "send_one", failing_from_the_sixth)
    before = timezone.now()
    counts = drain.drain_lane(lane=messages[0].lane)

    assert counts == {"sent": 5, "released": 7}  # 3 of batch 2, and batch 3 claimed ahead (4)
    assert drain.drain_lane(lane=messages[0].lane) == {"resting": 1}
    assert len(smtp_backend.wait_for(5)) == 5
    rows = Message.objects.filter(pk__in=[m.pk for m in messages])
    assert set(rows.filter(status=Status.SENT).values_list("attempts", flat=True)) == {1}
    waiting = rows.exclude(status=Status.SENT)
    assert waiting.count() == 7 and set(waiting.values_list("status", "attempts")) == {(Status.QUEUED, 0)}
    assert all(due >= before for due in waiting.values_list("next_attempt_at", flat=True))
    assert DeliveryAttempt.objects.filter(message__in=messages).count() == 5


@pytest.mark.django_db(transaction=True)
def test_a_worker_s_drain_announces_each_claim_and_send_from_its_recorder(
    default_templates, smtp_backend, worker_like_drain
):
    """With a receiver connected, the recorder's claims and outcomes are announced after their
    commit, once per row and transition, like any other transition."""
    import threading

    from notifications.signals import message_status_changed

    require_postgres()
    messages = queue_invoices(6)
    heard: list[tuple[object, str, str, str]] = []

    def receiver(sender, message, old, new, **kwargs):
        heard.append((message.pk, old, new, threading.current_thread().name))

    message_status_changed.connect(receiver)
    try:
        assert drain.drain_lane(lane=messages[0].lane) == {"sent": 6}
    finally:
        message_status_changed.disconnect(receiver)

    for message in messages:
        assert [(old, new) for pk, old, new, _ in heard if pk == message.pk] == [
            (Status.QUEUED, Status.SENDING), (Status.SENDING, Status.SENT)]
    assert {name.split("_")[0] for *_, name in heard} == {"outbox-recorder"}


def test_a_drain_that_could_not_clear_its_wake_up_s_mark_wakes_the_lane_once_more_when_it_ends(
    default_templates, smtp_backend, monkeypatch
):
    """Writers that found the mark still set after this drain's last claim rely on a wake-up
    already taken: the drain publishes one more, whatever it found."""
    from notifications.core.outbox import wakeups

    [message] = queue_invoices(1)
    woken: list[tuple[str, bool]] = []
    monkeypatch.setattr(wakeups, "taken", lambda lane: False)  # Redis failed the DELETE
    monkeypatch.setattr(wakeups, "wake", lambda lane, *, force=False, retry=False: woken.append((lane, force)))

    assert drain.drain_lane(lane=message.lane) == {"sent": 1}
    assert woken == [(message.lane, True)]
