"""A channel defined in the tests alone is delivered end to end by real workers (issue 20).

`support/recording_channel.py` is a `Channel` and a `Provider` that record what they were
handed. It is registered through `NOTIFICATIONS_CHANNELS` in the worker processes (their
environment) and in this one (pytest-django's `settings`); its rows are written through the
outbox's one writer (`core.outbox.writer`), and the claim, the retry policy, the lanes'
rests, cancel and the sweep run on them as on email's, without a core file knowing it. What
arrived is read from the recorder's file, written by the worker processes.

The registry itself (refusals naming the setting) and the provider's base are tested here too.
"""
from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone

from notifications.core import channels
from notifications.core.outbox import lifecycle, writer
from notifications.core.outbox.message_actions import cancel_message
from notifications.core.providers import Provider
from notifications.models import DeliveryAttempt, Message, Lane, Status
from notifications.tests.support import recording_channel
from notifications.tests.support.recording_channel import KEY, RecordingChannel, recorded
from notifications.tests.support.worker import wait_until

ADDRESS = "address"
FAST = {"OUTBOX_RETRY_BACKOFF_BASE_SECONDS": "0.3", "OUTBOX_RETRY_BACKOFF_MAX_SECONDS": "0.6"}
LEASE = {"OUTBOX_LEASE_SECONDS": "1.5", "OUTBOX_SWEEP_SECONDS": "0.2"}
Outcome = DeliveryAttempt.Outcome


@pytest.fixture
def recording(settings, tmp_path):
    """This process registers the recording channel (its rows are refused otherwise); returns
    the env a worker needs to deliver it, and the recorder's file."""
    settings.NOTIFICATIONS_CHANNELS = recording_channel.setting()
    log, outage = tmp_path / "recorded.jsonl", tmp_path / "outage"
    env = {"NOTIFICATIONS_CHANNELS": ",".join(recording_channel.setting()),
           recording_channel.LOG: str(log), recording_channel.OUTAGE_FILE: str(outage)}
    return env, log, outage


def write(addresses: list[str], *, lane: str = Lane.DEFAULT, send_at=None) -> list[Message]:
    """The channel's rows, written as every channel's are: status from the state machine,
    inserted and their lane woken on commit by the outbox's writer."""
    now = timezone.now()
    neutral = {"channel": KEY}
    rows = [Message(**{ADDRESS: address}, **neutral, lane=lane, max_attempts=5,
                         **lifecycle.initial_fields(send_at=send_at, now=now)) for address in addresses]
    with transaction.atomic():
        writer.write_messages(rows)
    return rows


def row(message: Message) -> Message:
    return Message.objects.get(pk=message.pk)


def attempts(message: Message) -> list[DeliveryAttempt]:
    return list(DeliveryAttempt.objects.filter(message_id=message.pk).order_by("number"))


def recorded_ids(log: Path) -> list[str]:
    return [entry["id"] for entry in recorded(log)]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_test_channel_is_claimed_retried_rested_and_cancelled_by_a_real_worker(recording, start_worker):
    env, log, outage = recording
    outage.touch()  # the recorder is down for `outage@` until the file goes
    [cancelled] = write(["cancelled@recording.test"])
    assert cancel_message(message=cancelled).status == Status.CANCELLED  # before any worker runs
    plain = write(["one@recording.test", "two@recording.test"])
    [transient] = write(["transient@recording.test"])
    [down] = write(["outage@recording.test"], lane=Lane.BULK)  # an outage rests its own lane

    worker = start_worker(env={**env, **FAST})

    # Claimed and delivered: handed to the provider once each, recorded sent with its attempt.
    assert wait_until(lambda: all(row(m).status == Status.SENT for m in plain), 60), worker.log()
    for message in plain:
        message = row(message)
        assert message.attempts == 1 and message.sent_via == "recorder" and message.provider == "recorder"
        assert message.provider_message_id == f"recorded-{message.pk.hex}"
        assert [a.outcome for a in attempts(message)] == [Outcome.SENT]
    assert sorted(e["address"] for e in recorded(log) if e["id"] in {str(m.pk) for m in plain}) == [
        "one@recording.test", "two@recording.test"]

    # A transient error, twice, retried with the backoff: due again later, never claimed before.
    assert wait_until(lambda: row(transient).status == Status.SENT, 60), worker.log()
    transient = row(transient)
    tries = attempts(transient)
    assert [a.outcome for a in tries] == [Outcome.TRANSIENT, Outcome.TRANSIENT, Outcome.SENT]
    assert tries[0].error.startswith("transient: unexpected error (try again later (attempt 1))")
    assert tries[0].sent_via == "recorder"
    assert transient.attempts == 3
    # The last retry's due time, kept on the row: after the failure, within the backoff's
    # ceiling, and the third attempt did not start before it.
    assert tries[1].finished_at <= transient.next_attempt_at <= tries[1].finished_at + timedelta(seconds=0.6)
    assert tries[2].started_at >= transient.next_attempt_at
    assert [e["attempt"] for e in recorded(log) if e["id"] == str(transient.pk)] == [3]

    # An outage: put back uncounted, no attempt, the lane rests; once over, sent on attempt 1.
    assert wait_until(lambda: row(down).error_message.startswith("Not attempted: "), 60), worker.log()
    assert row(down).status in (Status.QUEUED, Status.SENDING) and not attempts(down)
    assert "Outage on the bulk lane" in worker.log()
    assert str(down.pk) not in recorded_ids(log)
    outage.unlink()
    assert wait_until(lambda: row(down).status == Status.SENT, 60), worker.log()
    assert row(down).attempts == 1 and [a.outcome for a in attempts(down)] == [Outcome.SENT]

    # Cancelled: never handed over.
    assert row(cancelled).status == Status.CANCELLED
    assert str(cancelled.pk) not in recorded_ids(log)
    assert sorted(recorded_ids(log)) == sorted(str(m.pk) for m in [*plain, transient, down])  # each once


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_test_channel_s_rows_held_by_a_killed_worker_are_swept_and_delivered_by_another(recording, start_worker):
    """SIGKILL mid-drain: the rows the worker held go back after their lease (the sweep, in the
    other worker) and are delivered there; what is handed over twice is at most what the
    provider had taken and the dead worker had not recorded."""
    env, log, _ = recording
    messages = write([f"r{i}@recording.test" for i in range(20)])
    ids = {str(m.pk) for m in messages}
    doomed = start_worker(name="doomed", env={**env, **LEASE, recording_channel.DELAY: "0.2",
                                              "OUTBOX_DRAIN_MAX_SECONDS": "60"})
    assert wait_until(lambda: len(recorded(log)) >= 5, 60), doomed.log()
    doomed.process.kill()
    doomed.process.wait(10)
    time.sleep(0.3)  # a write of the recorder's in flight lands
    taken = set(recorded_ids(log))
    rows = Message.objects.filter(pk__in=[m.pk for m in messages])
    recorded_sent = {str(pk) for pk in rows.filter(status=Status.SENT).values_list("pk", flat=True)}
    assert rows.filter(status=Status.SENDING).exists(), "the worker died holding rows"

    other = start_worker(name="other", beat=True, env={**env, **LEASE})
    assert wait_until(lambda: rows.filter(status=Status.SENT).count() == len(ids), 90), other.log()
    assert "claims of stopped workers released" in other.log()
    handed = recorded_ids(log)
    assert set(handed) == ids  # nothing lost
    twice = {message_id for message_id in ids if handed.count(message_id) > 1}
    assert twice <= taken - recorded_sent and all(handed.count(m) <= 2 for m in ids), (twice, taken - recorded_sent)


# --- the registry and the provider's base ------------------------------------------------------

@pytest.mark.django_db
def test_a_row_of_a_channel_not_configured_is_refused_by_the_writer_naming_the_setting(settings):
    settings.NOTIFICATIONS_CHANNELS = []
    with pytest.raises(channels.ChannelNotConfigured) as refused:
        write(["nobody@recording.test"])
    assert "NOTIFICATIONS_CHANNELS" in refused.value.message and refused.value.code == "channel_not_configured"
    assert not Message.objects.exists()


def test_a_malformed_setting_is_refused_naming_it_and_the_registry_stays_as_it_was():
    before = [channel.key for channel in channels.registered()]
    for entries in (["sms"], ["notifications.tests.support.recording_channel.KEY"], "email",
                    ["email", "email"]):
        with pytest.raises(ImproperlyConfigured, match="NOTIFICATIONS_CHANNELS"):
            channels.load(entries)
    assert [channel.key for channel in channels.registered()] == before


def test_a_provider_that_fills_no_hook_says_which_one_is_missing():
    class Bare(Provider):
        pass

    with pytest.raises(NotImplementedError, match=r"Bare.send_one\(\)"):
        Bare().send_one(None)
    with pytest.raises(NotImplementedError, match=r"Bare.classify\(\)"):
        Bare().classify(ValueError("x"))


def test_the_recording_channel_is_found_for_its_rows(settings):
    settings.NOTIFICATIONS_CHANNELS = recording_channel.setting()
    message = Message(**{ADDRESS: "someone@recording.test"},
                           channel=KEY)
    channel = channels.for_row(message)
    assert isinstance(channel, RecordingChannel) and message.channel == KEY
    assert channel.suppression_key(" Someone@Recording.Test ") == "Someone@Recording.Test"  # its own kind: trimmed only
