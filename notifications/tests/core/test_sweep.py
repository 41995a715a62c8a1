"""Nothing accepted is lost: lanes with due rows are woken, claims of dead workers released,
and messages undelivered past OUTBOX_MAX_QUEUE_SECONDS expired."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from notifications.models import Message, Status
from notifications.channels.email.sending import send_mail_template
from notifications.core.outbox.sweep import sweep
from notifications.tests.support.payloads import WELCOME_VARS

pytestmark = pytest.mark.django_db


def age(message, seconds: float, *field_names: str) -> None:
    then = timezone.now() - timedelta(seconds=seconds)
    Message.objects.filter(pk=message.pk).update(**{name: then for name in field_names or ("updated_at",)})


def test_a_message_whose_wake_up_was_never_published_is_delivered_by_the_sweep(default_templates):
    # The send commits, but its on-commit wake-up never happens (here: the test's transaction).
    [message] = send_mail_template("onboarding_welcome", "a@rgz.bj", WELCOME_VARS)
    assert Message.objects.get(pk=message.pk).status == Status.QUEUED

    result = sweep()

    assert result.woken == [message.lane]
    assert Message.objects.get(pk=message.pk).status == Status.SENT and len(mail.outbox) == 1


def test_a_claim_left_by_a_dead_worker_is_released_after_its_lease(default_templates, settings):
    [message] = send_mail_template("onboarding_welcome", "a@rgz.bj", WELCOME_VARS)
    Message.objects.filter(pk=message.pk).update(status=Status.SENDING, attempts=1)
    age(message, settings.OUTBOX_LEASE_SECONDS - 60)
    assert (sweep().released, len(mail.outbox)) == (0, 0)
    age(message, settings.OUTBOX_LEASE_SECONDS + 1)

    result = sweep()

    assert result.released == 1 and result.woken == [message.lane]
    message.refresh_from_db()
    assert message.status == Status.SENT and message.attempts == 2 and len(mail.outbox) == 1


def test_the_sweep_never_touches_finished_rows_or_retries_not_yet_due(default_templates):
    [sent] = send_mail_template("onboarding_welcome", "a@rgz.bj", WELCOME_VARS)
    Message.objects.filter(pk=sent.pk).update(status=Status.SENT)
    [later] = send_mail_template("onboarding_welcome", "b@rgz.bj", WELCOME_VARS)
    Message.objects.filter(pk=later.pk).update(next_attempt_at=timezone.now() + timedelta(hours=1))

    assert sweep().woken == []
    assert mail.outbox == []
    assert Message.objects.get(pk=later.pk).status == Status.QUEUED


def test_a_message_undelivered_past_the_queue_lifetime_is_expired_with_the_reason(default_templates, settings):
    settings.OUTBOX_MAX_QUEUE_SECONDS = 3600
    [stuck, fresh] = [send_mail_template("onboarding_welcome", f"{n}@rgz.bj", WELCOME_VARS)[0] for n in "ab"]
    age(stuck, 3601, "created_at", "next_attempt_at")

    result = sweep()

    assert result.expired == 1
    stuck.refresh_from_db()
    assert stuck.status == Status.EXPIRED and "OUTBOX_MAX_QUEUE_SECONDS" in stuck.error_message
    assert Message.objects.get(pk=fresh.pk).status == Status.SENT
    assert [m.to for m in mail.outbox] == [["b@rgz.bj"]]


def test_a_scheduled_message_never_claimed_past_the_queue_lifetime_is_expired_too(default_templates, settings):
    settings.OUTBOX_MAX_QUEUE_SECONDS = 3600
    [message] = send_mail_template("onboarding_welcome", "a@rgz.bj", WELCOME_VARS,
                                   send_at=timezone.now() + timedelta(hours=1))
    assert sweep().expired == 0  # not due yet, so not overdue either
    age(message, 3601 + 3600, "send_at", "next_attempt_at")  # due an hour ago, for longer than the lifetime

    assert sweep().expired == 1
    assert Message.objects.get(pk=message.pk).status == Status.EXPIRED and mail.outbox == []


def test_the_command_runs_the_sweep(default_templates, capsys):
    [message] = send_mail_template("onboarding_welcome", "a@rgz.bj", WELCOME_VARS)
    call_command("sweep_messages")
    assert "lanes woken: default" in capsys.readouterr().out
    assert Message.objects.get(pk=message.pk).status == Status.SENT
