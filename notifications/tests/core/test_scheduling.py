"""Scheduled sends (`send_at`) and cancelling, through the API, the service and the admin."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from notifications.exceptions import InvalidSchedule
from notifications.access.groups import ADMINISTRATORS, AUDITORS, SENDERS
from notifications.models import Message, Lane, Status
from notifications.core.outbox import drain
from notifications.channels.email.sending import send_mail_template, send_simple_mail
from notifications.core.outbox.sweep import sweep
from notifications.tests.support.api import ApiClient, assert_matches_schema, create_key, make_user
from notifications.tests.support.payloads import WELCOME, WELCOME_VARS

pytestmark = pytest.mark.django_db

SEND = "/api/v1/email/send"


def cancel_url(message_id) -> str:
    return f"/api/v1/email/messages/{message_id}/cancel"


@pytest.fixture
def sender(default_templates):
    return ApiClient(create_key(make_user("billing", SENDERS)))


def test_a_scheduled_message_waits_until_its_time_then_leaves_through_the_drain(
    default_templates, django_capture_on_commit_callbacks
):
    at = timezone.now() + timedelta(hours=2)
    with django_capture_on_commit_callbacks(execute=True) as published:
        [message] = send_mail_template("onboarding_welcome", "a@rgz.bj", WELCOME_VARS, send_at=at)

    # One wake-up: its drain finds nothing due yet and, with a Redis broker, sets the lane's
    # timer for its time (test_wakeups), so it leaves without the sweep.
    assert [callback.lanes for callback in published] == [{Lane.DEFAULT}] and mail.outbox == []
    message.refresh_from_db()
    assert (message.status, message.send_at, message.next_attempt_at) == (Status.SCHEDULED, at, at)
    assert drain.drain_lane(lane=message.lane) == {} and sweep().woken == [] and mail.outbox == []

    Message.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())  # its time has come
    assert sweep().woken == [message.lane]
    message.refresh_from_db()
    assert message.status == Status.SENT and [m.to for m in mail.outbox] == [["a@rgz.bj"]]


def test_send_at_in_the_past_means_now_and_naive_or_far_times_are_refused(default_templates):
    [now] = send_simple_mail("a@rgz.bj", "Maintenant", "Tout de suite.", send_at="2020-01-01T00:00:00Z")
    assert now.status in (Status.QUEUED, Status.SENT) and now.send_at is None

    with pytest.raises(InvalidSchedule, match="time zone offset"):
        send_simple_mail("a@rgz.bj", "Sujet", "Texte.", send_at="2030-01-01T08:00:00")
    with pytest.raises(InvalidSchedule, match="OUTBOX_MAX_SCHEDULE_DAYS"):
        send_simple_mail("a@rgz.bj", "Sujet", "Texte.", send_at=timezone.now() + timedelta(days=91))
    assert Message.objects.count() == 1


def test_the_api_schedules_with_send_at_and_refuses_bad_times_naming_the_field(sender):
    at = (timezone.now() + timedelta(days=1)).replace(microsecond=0)
    response = sender.post(SEND, {**WELCOME, "send_at": at.isoformat()})
    assert response.status_code == 201, response.content
    assert_matches_schema("POST", SEND, response)
    [item] = response.json()["items"]
    assert item["status"] == "scheduled"
    assert Message.objects.get(pk=item["id"]).send_at == at

    for bad, says in [("demain", "ISO 8601"), ("2030-01-01T08:00:00", "offset"),
                      ((timezone.now() + timedelta(days=365)).isoformat(), "OUTBOX_MAX_SCHEDULE_DAYS")]:
        response = sender.post(SEND, {**WELCOME, "send_at": bad})
        assert response.status_code == 400, response.content
        assert says in " ".join(response.json()["send_at"])
    batch = sender.post("/api/v1/email/send-batch", {
        "template_key": "onboarding_welcome", "send_at": at.isoformat(),
        "items": [{"to": "a@rgz.bj", "variables": WELCOME["variables"]}],
    })
    assert batch.status_code == 201 and batch.json()["items"][0]["status"] == "scheduled"
    assert Message.objects.count() == 2


def test_a_sender_cancels_its_scheduled_message_which_is_never_sent(sender):
    at = timezone.now() + timedelta(hours=1)
    [item] = sender.post(SEND, {**WELCOME, "send_at": at.isoformat()}).json()["items"]

    response = sender.post(cancel_url(item["id"]))

    assert response.status_code == 200, response.content
    assert_matches_schema("POST", cancel_url(item["id"]), response)
    assert response.json()["status"] == "cancelled"
    Message.objects.filter(pk=item["id"]).update(next_attempt_at=timezone.now())  # even once due
    assert sweep().woken == [] and mail.outbox == []
    again = sender.post(cancel_url(item["id"]) + "/")
    assert again.status_code == 409 and "cancelled" in again.json()["status"][0]


def test_cancelling_a_sent_message_is_a_409_naming_its_status(sender, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        [item] = sender.post(SEND, WELCOME).json()["items"]
    assert Message.objects.get(pk=item["id"]).status == Status.SENT

    response = sender.post(cancel_url(item["id"]))

    assert response.status_code == 409
    assert response.json() == {
        "status": ["This message is sent: only scheduled or queued messages can be cancelled."],
        "codes": {"status": ["invalid_transition"]},
    }
    assert Message.objects.get(pk=item["id"]).status == Status.SENT


def test_another_senders_message_is_a_404_and_an_administrator_may_cancel_any(sender):
    [item] = sender.post(SEND, {**WELCOME, "send_at": (timezone.now() + timedelta(hours=1)).isoformat()}).json()["items"]
    other = ApiClient(create_key(make_user("marketing", SENDERS)))
    auditor = ApiClient(create_key(make_user("audit", AUDITORS)))

    assert other.post(cancel_url(item["id"])).status_code == 404
    assert other.post(cancel_url("not-a-uuid")).status_code == 404
    assert auditor.post(cancel_url(item["id"])).status_code == 403  # sees it, may not change it
    assert ApiClient().post(cancel_url(item["id"])).status_code == 401
    assert Message.objects.get(pk=item["id"]).status == Status.SCHEDULED

    admin = ApiClient(create_key(make_user("boss", ADMINISTRATORS)))
    assert admin.post(cancel_url(item["id"])).json()["status"] == "cancelled"


def test_the_message_detail_lists_each_delivery_attempt(default_templates, settings, start_smtp_server,
                                                           django_capture_on_commit_callbacks):
    server = start_smtp_server(rcpt_replies={"a@rgz.bj": "451 4.7.1 Greylisted, try again later"})
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = server.host, server.port, False
    settings.OUTBOX_RETRY_BACKOFF_BASE_SECONDS = settings.OUTBOX_RETRY_BACKOFF_MAX_SECONDS = 0
    auditor = ApiClient(create_key(make_user("audit", AUDITORS)))
    with django_capture_on_commit_callbacks(execute=True):
        [message] = send_mail_template("onboarding_welcome", "a@rgz.bj", WELCOME_VARS)
    for _ in range(5):  # each drain takes it again once its (zero) backoff passed
        drain.drain_lane(lane=message.lane)

    response = auditor.get(f"/api/v1/email/messages/{message.pk}")

    assert response.status_code == 200
    assert_matches_schema("GET", f"/api/v1/email/messages/{message.pk}", response)
    body = response.json()
    assert body["max_attempts"] == message.max_attempts == 2  # the template's
    assert (body["status"], body["attempts"]) == ("failed", 2)
    assert [a["number"] for a in body["delivery_attempts"]] == [1, 2]
    assert {a["outcome"] for a in body["delivery_attempts"]} == {"transient"}
    assert all("451 4.7.1 Greylisted" in a["error"] for a in body["delivery_attempts"])
    assert "after 2 of 2 attempts" in body["error_message"]
    assert len(server.received) == 0


def test_the_admin_cancel_action_cancels_what_it_may_and_says_what_it_left(
    default_templates, admin_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):  # its wake-up finds nothing due
        later = send_mail_template("onboarding_welcome", "a@rgz.bj", WELCOME_VARS,
                                   send_at=timezone.now() + timedelta(hours=1))[0]
    with django_capture_on_commit_callbacks(execute=True):
        [sent] = send_mail_template("onboarding_welcome", "b@rgz.bj", WELCOME_VARS)

    response = admin_client.post(reverse("admin:notifications_message_changelist"), {
        "action": "cancel", "_selected_action": [str(later.pk), str(sent.pk)],
    }, follow=True)

    assert response.status_code == 200
    text = response.content.decode()
    assert "1 message cancelled" in text and "1 message not cancelled" in text and "found sent" in text
    assert Message.objects.get(pk=later.pk).status == Status.CANCELLED
    assert Message.objects.get(pk=sent.pk).status == Status.SENT


def test_the_admin_cancel_action_needs_the_cancel_permission(default_templates, client):
    auditor = make_user("audit", AUDITORS)
    auditor.is_staff = True
    auditor.save()
    client.force_login(auditor)
    page = client.get(reverse("admin:notifications_message_changelist"))
    assert page.status_code == 200 and 'value="cancel"' not in page.content.decode()
