"""STARTTLS and implicit TLS with AUTH LOGIN against aiosmtpd, with certificates made here.

The client trusts the test's CA through SMTP_SSL_CAFILE; a certificate from another CA is
refused. Both the settings-chosen SMTPBackend and DatabaseSMTPBackend are covered.
"""
from __future__ import annotations

import base64
import logging

import pytest

from notifications.models import Message, SMTPSecurity, SMTPServerConfig, Status
from notifications.channels.email.sending import send_simple_mail
from notifications.tests.support.outcomes import assert_put_back_uncounted
from notifications.tests.support.tls import CertificateAuthority

pytestmark = pytest.mark.django_db

USER, PASSWORD = "mailer@rgz.bj", "Tr0ub4dor&3-smtp"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA the client trusts, one it does not, and a server certificate from each."""
    directory = tmp_path_factory.mktemp("pki")
    trusted, stranger = CertificateAuthority(directory, "trusted"), CertificateAuthority(directory, "stranger")
    return {
        "ca": trusted.cert,
        "good": trusted.issue_server_certificate(),
        "untrusted": stranger.issue_server_certificate(),
    }


def use_settings_backend(settings, server, *, security: str, username: str = USER, password: str = PASSWORD):
    settings.EMAIL_BACKEND = "notifications.backends.SMTPBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = server.host, server.port
    settings.EMAIL_USE_TLS = security == SMTPSecurity.STARTTLS
    settings.EMAIL_USE_SSL = security == SMTPSecurity.SSL
    settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = username, password


def use_database_backend(settings, server, *, security: str, username: str = USER, password: str = PASSWORD):
    settings.EMAIL_BACKEND = "notifications.backends.DatabaseSMTPBackend"
    config = SMTPServerConfig(name="tls-relay", host=server.host, port=server.port, security=security,
                              username=username, timeout_seconds=5, order=1)
    config.set_password(password)
    config.save()


BACKENDS = {"settings": use_settings_backend, "database": use_database_backend}


def send(capture) -> Message:
    with capture(execute=True):
        [message] = send_simple_mail("ops@rgz.bj", "Rapport chiffré", "Le rapport est prêt.")
    message.refresh_from_db()
    return message


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("security", [SMTPSecurity.STARTTLS, SMTPSecurity.SSL])
def test_tls_with_auth_login_to_a_server_whose_ca_is_trusted(
    backend, security, pki, settings, start_smtp_server, django_capture_on_commit_callbacks
):
    server = start_smtp_server(tls=pki["good"].server_context(), implicit_tls=security == SMTPSecurity.SSL,
                               login=(USER, PASSWORD))
    settings.SMTP_SSL_CAFILE = str(pki["ca"])
    BACKENDS[backend](settings, server, security=security)

    message = send(django_capture_on_commit_callbacks)

    assert message.status == Status.SENT, message.error_message
    [received] = server.wait_for(1)
    assert received.tls and received.login == USER
    assert server.handler.auth_mechanisms == ["LOGIN"]
    assert message.sent_via == ("tls-relay" if backend == "database" else f"{server.host}:{server.port}")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("security", [SMTPSecurity.STARTTLS, SMTPSecurity.SSL])
@pytest.mark.parametrize("trust", ["our CA", "system CAs"])
def test_a_certificate_the_client_does_not_trust_is_refused_and_the_message_waits_uncounted(
    backend, security, trust, pki, settings, start_smtp_server, django_capture_on_commit_callbacks
):
    server = start_smtp_server(tls=pki["untrusted"].server_context(), implicit_tls=security == SMTPSecurity.SSL,
                               login=(USER, PASSWORD))
    settings.SMTP_SSL_CAFILE = str(pki["ca"]) if trust == "our CA" else ""
    BACKENDS[backend](settings, server, security=security)

    message = send(django_capture_on_commit_callbacks)

    assert server.received == []
    assert_put_back_uncounted(message, says="TLS certificate is not trusted")
    assert "certificate verify failed" in message.error_message


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_wrong_password_is_an_outage_clear_and_never_logged(
    backend, pki, settings, start_smtp_server, django_capture_on_commit_callbacks, caplog, capfd
):
    wrong = "Wr0ng-but-s3cret!"
    server = start_smtp_server(tls=pki["good"].server_context(), login=(USER, PASSWORD))
    settings.SMTP_SSL_CAFILE = str(pki["ca"])
    BACKENDS[backend](settings, server, security=SMTPSecurity.STARTTLS, password=wrong)

    caplog.set_level(logging.DEBUG)
    capfd.readouterr()  # start from nothing: only what the send printed is checked
    message = send(django_capture_on_commit_callbacks)
    printed = capfd.readouterr()  # what reached stdout and stderr: smtplib's debug output goes there

    assert server.received == []
    assert_put_back_uncounted(message, says="refused the login; check the username and password (SMTPAuthenticationError: 535")
    # Everything this process logged, except the test server's own log ("mail.log"): it stands in
    # for a remote server, and aiosmtpd logs the AUTH LOGIN exchange at DEBUG on its side.
    ours = [record for record in caplog.records if not record.name.startswith("mail.log")]
    text = "\n".join(f"{record.name} {record.getMessage()} {record.exc_text or ''}" for record in ours)
    assert "Outage on the default lane" in text, "the failure itself must be logged"
    for secret in (wrong, base64.b64encode(wrong.encode()).decode(), PASSWORD):
        assert secret not in text
        assert secret not in message.error_message
        assert secret not in printed.out
        assert secret not in printed.err


def test_starttls_if_offered_upgrades_when_offered_and_sends_plain_otherwise(
    pki, settings, start_smtp_server, django_capture_on_commit_callbacks
):
    settings.SMTP_SSL_CAFILE = str(pki["ca"])
    with_tls, without_tls = start_smtp_server(tls=pki["good"].server_context()), start_smtp_server()
    for server in (with_tls, without_tls):
        SMTPServerConfig.objects.all().delete()
        use_database_backend(settings, server, security=SMTPSecurity.STARTTLS_IF_OFFERED, username="", password="")
        assert send(django_capture_on_commit_callbacks).status == Status.SENT
    assert [r.tls for r in with_tls.received + without_tls.received] == [True, False]


def test_required_starttls_against_a_server_without_it_is_an_outage(
    settings, start_smtp_server, django_capture_on_commit_callbacks
):
    server = start_smtp_server()
    use_database_backend(settings, server, security=SMTPSecurity.STARTTLS, username="", password="")

    message = send(django_capture_on_commit_callbacks)

    assert server.received == []
    assert_put_back_uncounted(message, says="no active SMTP server took the message")
    assert "STARTTLS extension not supported by server" in message.error_message
