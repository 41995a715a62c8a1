"""classify_delivery_error: the one table the retry policy will read, and its use on the row."""
from __future__ import annotations

import smtplib
import ssl
import time

import pytest
from anymail.exceptions import AnymailInvalidAddress, AnymailRecipientsRefused
from django.core.exceptions import ImproperlyConfigured

from notifications.channels.email.backends.errors import (
    ErrorKind,
    classify_delivery_error,
    is_connection_lost,
    is_outage,
    is_server_unusable,
)
from notifications.exceptions import (
    AllSMTPServersFailed,
    DecryptionError,
    DeliveryOutcomeUnknown,
    NoSMTPServerConfigured,
    NothingSent,
    ServerUnreachable,
)
from notifications.models import DeliveryAttempt
from notifications.core.outbox import drain
from notifications.channels.email.sending import send_simple_mail
from notifications.core.outbox.sweep import sweep
from notifications.tests.support.outcomes import assert_failed

P, T = ErrorKind.PERMANENT, ErrorKind.TRANSIENT


def timed_out_reply() -> smtplib.SMTPServerDisconnected:
    """What smtplib raises when a reply does not come in time (the timeout as its context)."""
    try:
        try:
            raise TimeoutError("timed out")
        except TimeoutError as error:
            # smtplib raises it exactly so: the timeout as its context, not its cause
            raise smtplib.SMTPServerDisconnected(f"Connection unexpectedly closed: {error}")  # noqa: B904
    except smtplib.SMTPServerDisconnected as disconnected:
        return disconnected


refused_login = smtplib.SMTPAuthenticationError(535, b"5.7.8 Authentication credentials invalid")
connection_refused = ConnectionRefusedError(111, "Connection refused")


@pytest.mark.parametrize("exc, kind, says", [
    (smtplib.SMTPDataError(554, b"5.7.1 Message rejected as spam"), P, "answered 554"),
    (smtplib.SMTPSenderRefused(553, b"5.7.1 Sender not allowed", "noreply@rgz.bj"), P, "answered 553"),
    (smtplib.SMTPDataError(452, b"4.3.1 Insufficient system storage"), T, "answered 452"),
    (smtplib.SMTPSenderRefused(421, b"4.7.0 Too many connections", "noreply@rgz.bj"), T, "answered 421"),
    (smtplib.SMTPRecipientsRefused({"a@x.bj": (550, b"no such user")}), P, "a@x.bj (550 no such user)"),
    (smtplib.SMTPRecipientsRefused({"a@x.bj": (550, b"no"), "b@x.bj": (450, b"later")}), T, "refused the recipients"),
    (refused_login, P, "refused the login; check the username and password"),
    (smtplib.SMTPNotSupportedError("STARTTLS extension not supported by server."), P, "STARTTLS"),
    (smtplib.SMTPServerDisconnected("Connection unexpectedly closed"), T, "network or server error"),
    (ssl.SSLCertVerificationError(1, "certificate verify failed"), P, "SMTP_SSL_CAFILE"),
    (connection_refused, T, "refused the connection"),
    (TimeoutError("timed out"), T, "did not answer in time"),
    (timed_out_reply(), T, "did not answer in time"),
    (OSError(-2, "Name or service not known"), T, "network or server error"),
    (AnymailRecipientsRefused(esp_name="SendGrid"), P, "SendGrid rejected the recipients"),
    (AnymailInvalidAddress("Invalid email address 'x'"), P, "cannot send this message as built"),
    (ImproperlyConfigured("SENDGRID_API_KEY is missing"), P, "misconfigured"),
    (NoSMTPServerConfigured(), T, "No active SMTP server is configured"),
    (DecryptionError("cannot be decrypted"), P, "cannot be decrypted"),
    (NothingSent("nothing was sent"), T, "unexpected error"),
    (AllSMTPServersFailed([("a", "h:1", refused_login), ("b", "h:2", refused_login)]), P, "'b' (h:2): permanent"),
    (AllSMTPServersFailed([("a", "h:1", refused_login), ("b", "h:2", connection_refused)]), T, "'a' (h:1)"),
    (ValueError("a bug"), T, "unexpected error (ValueError: a bug)"),
    (ServerUnreachable("h:1", connection_refused), T, "refused the connection"),
    (DeliveryOutcomeUnknown("h:1", timed_out_reply()), P, "the outcome is unknown"),
])
def test_each_error_has_a_class_and_a_message_to_act_on(exc, kind, says):
    classified = classify_delivery_error(exc)
    assert classified.kind is kind
    assert says in classified.message
    assert str(classified).startswith(f"{kind.value}: ")


@pytest.mark.parametrize("exc, lost, unusable", [
    (smtplib.SMTPServerDisconnected("closed"), True, True),
    (timed_out_reply(), False, True),
    (BrokenPipeError(32, "Broken pipe"), True, True),
    (smtplib.SMTPSenderRefused(421, b"closing", "a@b.bj"), True, True),
    (connection_refused, False, True),
    (refused_login, False, True),
    (DecryptionError("x"), False, True),
    (smtplib.SMTPRecipientsRefused({"a@x.bj": (550, b"no")}), False, False),
    (smtplib.SMTPDataError(554, b"spam"), False, False),
    (ValueError("a bug"), False, False),
])
def test_which_errors_reopen_the_connection_and_which_move_to_the_next_server(exc, lost, unusable):
    assert is_connection_lost(exc) is lost
    assert is_server_unusable(exc) is unusable


@pytest.mark.parametrize("exc, outage", [
    (ServerUnreachable("h:1", connection_refused), True),
    (ServerUnreachable("h:1", refused_login), True),
    (NoSMTPServerConfigured(), True),
    (AllSMTPServersFailed([("a", "h:1", ServerUnreachable("a", connection_refused))]), True),
    (AllSMTPServersFailed([("a", "h:1", ServerUnreachable("a", connection_refused)), ("b", "h:2", timed_out_reply())]),
     False),  # b was reached: the message itself was tried
    (timed_out_reply(), False),
    (DeliveryOutcomeUnknown("h:1", timed_out_reply()), False),
    (smtplib.SMTPRecipientsRefused({"a@x.bj": (451, b"later")}), False),
])
def test_an_outage_is_when_no_server_could_be_reached_at_all(exc, outage):
    assert is_outage(exc) is outage


@pytest.mark.django_db
@pytest.mark.smtp_delay(1.5)
@pytest.mark.parametrize("backend", ["django.core.mail.backends.smtp.EmailBackend", "notifications.backends.SMTPBackend"])
def test_a_server_that_takes_the_message_but_answers_after_the_timeout_gets_it_once_and_never_again(
    backend, smtp_backend, settings, django_capture_on_commit_callbacks
):
    """The server may have taken it (it did here): sending again could deliver it twice
    (django-post_office #479). It ends `failed`, "outcome unknown", for staff to judge."""
    settings.EMAIL_BACKEND = backend
    settings.EMAIL_TIMEOUT = 0.5
    settings.OUTBOX_RETRY_BACKOFF_BASE_SECONDS = 0.001
    with django_capture_on_commit_callbacks(execute=True):
        [message] = send_simple_mail("ops@rgz.bj", "Lent", "Le serveur est lent.")

    assert_failed(message, kind="permanent", says="the outcome is unknown")
    assert DeliveryAttempt.objects.get(message=message).outcome == DeliveryAttempt.Outcome.UNKNOWN
    assert len(smtp_backend.wait_for(1, timeout=5)) == 1  # it did arrive
    assert drain.drain_lane(lane=message.lane) == {} and sweep().woken == []
    time.sleep(0.2)
    assert len(smtp_backend.received) == 1


@pytest.mark.django_db
def test_a_timeout_on_a_kept_connection_is_not_sent_again(smtp_backend, settings, django_capture_on_commit_callbacks):
    """The server may still be taking the message: sending it again could deliver it twice."""
    settings.EMAIL_BACKEND = "notifications.backends.SMTPBackend"
    settings.EMAIL_TIMEOUT = 0.5
    with django_capture_on_commit_callbacks(execute=True):
        send_simple_mail("ops@rgz.bj", "Rapide", "Premier message.")
    smtp_backend.handler.delay = 1.5
    with django_capture_on_commit_callbacks(execute=True):
        [slow] = send_simple_mail("ops@rgz.bj", "Lent", "Second message.")
    assert_failed(slow, kind="permanent", says="the outcome is unknown")
    assert smtp_backend.connections == 1
    assert len(smtp_backend.wait_for(2, timeout=5)) == 2 and drain.drain_lane(lane=slow.lane) == {}
