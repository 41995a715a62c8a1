"""Nothing accepted is lost: messages whose task never ran, or whose worker died, are swept."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from notifications.models import EmailMessage, Status
from notifications.services.sending import send_mail_template
from notifications.services.sweep import SweepResult, sweep_stranded_messages
from notifications.tests.support.payloads import WELCOME_VARS

pytestmark = pytest.mark.django_db


def age(message, seconds: int) -> None:
    EmailMessage.objects.filter(pk=message.pk).update(updated_at=timezone.now() - timedelta(seconds=seconds))


def test_a_message_whose_task_was_never_published_is_delivered_by_the_sweep(default_templates, settings):
    # The send commits, but its on_commit publish never happens (the broker was down).
    [message] = send_mail_template("onboarding_welcome", "a@rgz.bj", WELCOME_VARS)
    assert EmailMessage.objects.get(pk=message.pk).status == Status.QUEUED
    assert sweep_stranded_messages().republished == 0  # too recent: its task may still be coming
    age(message, settings.EMAIL_SWEEP_QUEUED_AFTER_SECONDS + 1)
    result = sweep_stranded_messages()
    assert result.republished == 1
    assert EmailMessage.objects.get(pk=message.pk).status == Status.SENT and len(mail.outbox) == 1


def test_a_claim_left_by_a_dead_worker_is_released_after_its_lease(default_templates, settings):
    [message] = send_mail_template("onboarding_welcome", "a@rgz.bj", WELCOME_VARS)
    EmailMessage.objects.filter(pk=message.pk).update(status=Status.SENDING, attempts=1)
    age(message, settings.EMAIL_SENDING_LEASE_SECONDS - 60)
    assert sweep_stranded_messages() == SweepResult(requeued_from_sending=0, republished=0)
    age(message, settings.EMAIL_SENDING_LEASE_SECONDS + 1)
    result = sweep_stranded_messages()
    assert result.requeued_from_sending == 1 and result.republished == 1
    message.refresh_from_db()
    assert message.status == Status.SENT and message.attempts == 2 and len(mail.outbox) == 1


def test_the_sweep_never_touches_finished_or_scheduled_retries(default_templates, settings):
    settings.EMAIL_SWEEP_QUEUED_AFTER_SECONDS = 0
    [sent] = send_mail_template("onboarding_welcome", "a@rgz.bj", WELCOME_VARS)
    EmailMessage.objects.filter(pk=sent.pk).update(status=Status.SENT)
    [later] = send_mail_template("onboarding_welcome", "b@rgz.bj", WELCOME_VARS)
    EmailMessage.objects.filter(pk=later.pk).update(next_attempt_at=timezone.now() + timedelta(hours=1))
    age(later, 10)
    assert sweep_stranded_messages().republished == 0
    assert mail.outbox == []


def test_the_command_runs_the_sweep(default_templates, settings, capsys):
    settings.EMAIL_SWEEP_QUEUED_AFTER_SECONDS = 0
    [message] = send_mail_template("onboarding_welcome", "a@rgz.bj", WELCOME_VARS)
    age(message, 5)
    call_command("sweep_messages")
    assert "1 queued messages re-published" in capsys.readouterr().out
    assert EmailMessage.objects.get(pk=message.pk).status == Status.SENT
