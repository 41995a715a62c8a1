"""DatabaseSMTPBackend against real aiosmtpd servers configured as SMTPServerConfig rows."""
from __future__ import annotations

import logging

import pytest
from django.urls import reverse

from notifications.models import Message, SMTPSecurity, SMTPServerConfig, Status
from notifications.channels.email.sending import send_simple_mail
from notifications.tests.support.outcomes import assert_put_back_uncounted, assert_retry_scheduled
from notifications.tests.support.services import free_port
from notifications.tests.support.smtp import SilentServer

pytestmark = pytest.mark.django_db


def server_config(name: str, server, *, order: int, **fields) -> SMTPServerConfig:
    """A row pointing at a test server (or at a `(host, port)` nobody listens on)."""
    host, port = (server.host, server.port) if hasattr(server, "port") else server
    password = fields.pop("password", "")
    fields.setdefault("timeout_seconds", 5)
    config = SMTPServerConfig(name=name, host=host, port=port, order=order, security=SMTPSecurity.NONE, **fields)
    config.set_password(password)
    config.save()
    return config


@pytest.fixture
def send(django_capture_on_commit_callbacks):
    """Queue one simple message and deliver it eagerly; returns the row as it ended."""

    def send(to: str = "ops@rgz.bj", subject: str = "Export prêt") -> Message:
        with django_capture_on_commit_callbacks(execute=True):
            [message] = send_simple_mail(to, subject, "Votre export est prêt.")
        message.refresh_from_db()
        return message

    return send


def nobody_listening() -> tuple[str, int]:
    return "127.0.0.1", free_port()


def test_with_the_first_server_down_mail_goes_through_the_second_and_says_so(database_smtp, start_smtp_server, send):
    backup = start_smtp_server()
    server_config("primary", nobody_listening(), order=1)
    server_config("backup", backup, order=2)

    message = send()

    assert message.status == Status.SENT and message.sent_via == "backup"
    [received] = backup.wait_for(1)
    assert received.rcpt_tos == ["ops@rgz.bj"]
    assert received.message["X-Notification-Id"] == str(message.pk)


def test_with_both_up_the_first_is_used_and_a_swap_in_the_admin_applies_to_the_next_message(
    database_smtp, start_smtp_server, send, admin_client
):
    first, second = start_smtp_server(), start_smtp_server()
    primary = server_config("primary", first, order=1)
    server_config("backup", second, order=2)

    assert send(subject="un").sent_via == "primary"
    response = admin_client.post(reverse("admin:notifications_smtpserverconfig_change", args=[primary.pk]), {
        "name": "primary", "order": 3, "is_active": "on", "host": first.host, "port": first.port,
        "security": "none", "timeout_seconds": 5, "username": "", "password": "", "from_email": "",
    })
    assert response.status_code == 302, response.content.decode()[:3000]
    assert send(subject="deux").sent_via == "backup"

    assert [r.message["Subject"] for r in first.received] == ["un"]
    assert [r.message["Subject"] for r in second.received] == ["deux"]


def test_a_server_going_down_between_messages_hands_over_to_the_next(database_smtp, start_smtp_server, send):
    first, second = start_smtp_server(), start_smtp_server()
    server_config("primary", first, order=1)
    server_config("backup", second, order=2)
    assert send().sent_via == "primary"

    first.stop()  # closes the connection the backend kept open, and the port
    message = send()

    assert message.status == Status.SENT and message.sent_via == "backup"
    assert len(second.wait_for(1)) == 1


def test_a_server_refusing_the_login_hands_over_to_the_next(database_smtp, start_smtp_server, send, caplog):
    guarded, open_relay = start_smtp_server(login=("mailer", "right-password")), start_smtp_server()
    server_config("primary", guarded, order=1, username="mailer", password="wrong-password")
    server_config("backup", open_relay, order=2)

    with caplog.at_level(logging.WARNING, logger="notifications"):
        message = send()

    assert message.sent_via == "backup" and guarded.received == []
    assert f"SMTP server 'primary' ({guarded.host}:{guarded.port}) is unusable" in caplog.text
    assert "refused the login" in caplog.text


def test_with_no_active_server_the_message_waits_uncounted_with_a_clear_error(database_smtp, start_smtp_server, send):
    server_config("retired", start_smtp_server(), order=1, is_active=False)

    message = send()

    assert_put_back_uncounted(message, says="No active SMTP server is configured")
    assert "Notifications › SMTP servers" in message.error_message


def test_every_server_unreachable_is_an_outage_that_costs_no_attempt_and_names_each(database_smtp, send):
    first, second = nobody_listening(), nobody_listening()
    server_config("primary", first, order=1)
    server_config("backup", second, order=2)

    message = send()

    assert_put_back_uncounted(message, says="no active SMTP server took the message")
    assert f"'primary' (127.0.0.1:{first[1]}): transient: the server refused the connection" in message.error_message
    assert f"'backup' (127.0.0.1:{second[1]}): transient" in message.error_message


def test_a_refused_recipient_is_permanent_and_not_tried_on_the_next_server(database_smtp, start_smtp_server, send):
    strict = start_smtp_server(rcpt_replies={"ghost@rgz.bj": "550 5.1.1 <ghost@rgz.bj>: user unknown"})
    other = start_smtp_server()
    server_config("primary", strict, order=1)
    server_config("backup", other, order=2)

    message = send(to="ghost@rgz.bj")

    assert message.status == Status.FAILED
    assert message.error_message.startswith("permanent: the SMTP server refused the recipients: ghost@rgz.bj (550")
    assert other.received == []


def test_a_greylisting_reply_is_transient(database_smtp, start_smtp_server, send):
    server = start_smtp_server(rcpt_replies={"new@rgz.bj": "451 4.7.1 Greylisted, try again later"})
    server_config("primary", server, order=1)

    message = send(to="new@rgz.bj")

    assert_retry_scheduled(message, says="the SMTP server refused the recipients: new@rgz.bj (451")


def test_the_servers_own_from_address_is_sent_and_recorded(database_smtp, start_smtp_server, send):
    server = start_smtp_server()
    server_config("relay", server, order=1, from_email="relay@mail.rgz.bj")

    message = send()

    [received] = server.wait_for(1)
    assert received.mail_from == "relay@mail.rgz.bj"
    assert received.message["From"] == "RGZ Notifications <relay@mail.rgz.bj>"
    assert message.from_email == "RGZ Notifications <relay@mail.rgz.bj>"


def test_one_connection_is_kept_per_server_and_reopened_when_its_config_changes(
    database_smtp, start_smtp_server, send
):
    server = start_smtp_server()
    config = server_config("primary", server, order=1)

    send(), send(), send()
    assert server.connections == 1

    config.timeout_seconds = 7
    config.save()
    send(), send()
    assert server.connections == 2
    assert len(server.received) == 5


def test_a_deactivated_server_is_no_longer_used(database_smtp, start_smtp_server, send):
    first, second = start_smtp_server(), start_smtp_server()
    primary = server_config("primary", first, order=1)
    server_config("backup", second, order=2)
    send()

    SMTPServerConfig.objects.filter(pk=primary.pk).update(is_active=False)

    assert send().sent_via == "backup"
    assert len(first.received) == 1


@pytest.fixture
def silent_server():
    server = SilentServer().start()
    yield server
    server.stop()


@pytest.fixture
def silent_primary(database_smtp, start_smtp_server, silent_server):
    """A primary that accepts TCP and never greets (1 s timeout) and a working backup server."""
    primary = server_config("primary", silent_server, order=1, timeout_seconds=1)
    backup = start_smtp_server()
    server_config("backup", backup, order=2)
    return primary, backup


def test_a_primary_that_times_out_costs_its_timeout_once_then_rests_behind_the_backup(
    silent_primary, silent_server, start_smtp_server, send, settings
):
    settings.SMTP_FAILOVER_COOLDOWN_SECONDS = 300
    primary, backup = silent_primary

    messages = [send(subject=f"n{index}") for index in range(4)]

    assert [m.sent_via for m in messages] == ["backup"] * 4
    assert silent_server.connections == 1  # tried once, then left to rest
    assert [r.message["Subject"] for r in backup.wait_for(4)] == ["n0", "n1", "n2", "n3"]

    # Fixing the primary in the admin ends its rest: the next message goes through it.
    fixed = start_smtp_server()
    SMTPServerConfig.objects.filter(pk=primary.pk).update(host=fixed.host, port=fixed.port)
    assert send(subject="n4").sent_via == "primary"
    assert [r.message["Subject"] for r in fixed.wait_for(1)] == ["n4"]


def test_with_no_cooldown_a_primary_that_times_out_is_tried_first_for_every_message(
    silent_primary, silent_server, send, settings
):
    settings.SMTP_FAILOVER_COOLDOWN_SECONDS = 0

    assert [send(subject=f"n{index}").sent_via for index in range(2)] == ["backup", "backup"]
    assert silent_server.connections == 2


def test_a_resting_server_is_still_tried_when_every_other_one_fails(
    database_smtp, start_smtp_server, send, settings
):
    settings.SMTP_FAILOVER_COOLDOWN_SECONDS = 300
    host, port = nobody_listening()
    server_config("primary", (host, port), order=1)
    backup = start_smtp_server()
    server_config("backup", backup, order=2)
    assert send(subject="one").sent_via == "backup"  # the primary failed: it rests

    backup.stop()
    primary = start_smtp_server(port=port)  # the primary is back on its address, the backup is gone
    assert send(subject="two").sent_via == "primary"  # tried after the backup, as the last resort
    assert [r.message["Subject"] for r in primary.wait_for(1)] == ["two"]
