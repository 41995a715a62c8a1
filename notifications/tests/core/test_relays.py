"""The relays the caps' acceptance tests and the benchmarks run against behave as real ones do."""
from __future__ import annotations

import smtplib

import pytest
from django.core.mail import EmailMessage as DjangoEmail
from django.core.mail import get_connection

from notifications.tests.support.relays import SendGridAPI, most_in_any_window, relay


@pytest.fixture
def capped_relay():
    server = relay(delay=0.02, max_connections=3)
    yield server
    server.stop()


def test_a_relay_capped_at_three_refuses_a_fourth_connection_with_421_and_keeps_arrival_times(capped_relay):
    clients = [smtplib.SMTP(capped_relay.host, capped_relay.port, timeout=5) for _ in range(3)]
    with pytest.raises(smtplib.SMTPConnectError) as refused:
        smtplib.SMTP(capped_relay.host, capped_relay.port, timeout=5)
    for index, client in enumerate(clients):
        client.sendmail("a@rgz.bj", ["b@rgz.bj"], f"X-Notification-Id: n{index}\r\nSubject: s\r\n\r\nbody\r\n")
    clients.pop().quit()
    with smtplib.SMTP(capped_relay.host, capped_relay.port, timeout=5) as fourth:  # a slot came free
        fourth.sendmail("a@rgz.bj", ["b@rgz.bj"], "X-Notification-Id: n3\r\nSubject: s\r\n\r\nbody\r\n")
    for client in clients:
        client.quit()

    assert refused.value.smtp_code == 421
    assert capped_relay.concurrency.peak == 3 and capped_relay.concurrency.refused == 1
    assert [r.notification_id for r in capped_relay.received] == ["n0", "n1", "n2", "n3"]
    assert len(capped_relay.arrival_times()) == 4 and most_in_any_window(capped_relay.arrival_times()) == 4


def test_a_relay_leaves_a_stalled_messages_data_unanswered_while_other_connections_go_on():
    server = relay(delay=0.0, stall_ids={"stuck"}, stall_seconds=30)
    try:
        stalled = smtplib.SMTP(server.host, server.port, timeout=0.5)
        with pytest.raises(smtplib.SMTPServerDisconnected, match="timed out"):  # no answer to DATA
            stalled.sendmail("a@rgz.bj", ["b@rgz.bj"], "X-Notification-Id: stuck\r\nSubject: s\r\n\r\nbody\r\n")
        with smtplib.SMTP(server.host, server.port, timeout=5) as other:
            other.sendmail("a@rgz.bj", ["b@rgz.bj"], "X-Notification-Id: fine\r\nSubject: s\r\n\r\nbody\r\n")
        stalled.close()
    finally:
        server.stop()

    assert sorted(r.notification_id for r in server.received) == ["fine", "stuck"]  # both arrived


def test_anymails_sendgrid_backend_pointed_at_the_local_api_is_answered_as_sendgrid_does(settings):
    api = SendGridAPI(delay=0.1).start()
    try:
        settings.ANYMAIL = {"SENDGRID_API_KEY": "SG.bench", "SENDGRID_API_URL": f"{api.url}/v3/"}
        backend = get_connection("anymail.backends.sendgrid.EmailBackend")
        email = DjangoEmail("s", "body", "a@rgz.bj", ["b@rgz.bj"], headers={"X-Notification-Id": "n1"})
        assert backend.send_messages([email]) == 1
    finally:
        api.stop()

    assert email.anymail_status.status == {"queued"}
    assert email.anymail_status.message_id  # from the X-Message-Id header, as SendGrid answers
    assert [call.notification_id for call in api.calls] == ["n1"]
    assert api.concurrency.peak == 1


def test_most_in_any_window_counts_a_sliding_window():
    assert most_in_any_window([0.0, 0.5, 1.0, 1.01, 1.6]) == 3  # 0.5, 1.0, 1.01 (or 0.0, 0.5, 1.0)
    assert most_in_any_window([]) == 0
