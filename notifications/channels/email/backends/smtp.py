"""Django's SMTP backend, with the CA to trust and the four security modes of the admin.

Django's backend knows STARTTLS (`SMTP_USE_TLS`) and implicit TLS (`SMTP_USE_SSL`) but
verifies certificates only against the system's CAs, and has no "STARTTLS if the server
offers it". This subclass adds both and nothing else, so it is the settings-chosen SMTP
backend and also the per-server connection `DatabaseSMTPBackend` keeps for each row.
"""
from __future__ import annotations

import contextlib
import functools
import re
import smtplib
import ssl

from django.conf import settings
from django.core.mail.backends.smtp import EmailBackend as DjangoSMTPBackend
from django.core.mail.message import sanitize_address
from django.core.mail.utils import DNS_NAME
from django.utils.functional import cached_property

from notifications.models.smtp import SMTPSecurity


class SMTPBackend(DjangoSMTPBackend):
    """SMTP over one connection, kept open by the caller between messages.

    `security` is one of `SMTPSecurity`; by default it follows `SMTP_USE_SSL` /
    `SMTP_USE_TLS`. Certificates are verified against `ssl_cafile` (default
    `SMTP_SSL_CAFILE`) when set, else the system's CAs. `label` names the server in
    `Message.sent_via`.
    """

    def __init__(
        self,
        *args,
        security: str | None = None,
        ssl_cafile: str | None = None,
        label: str | None = None,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        if security is None:
            security = SMTPSecurity.SSL if self.use_ssl else SMTPSecurity.STARTTLS if self.use_tls else SMTPSecurity.NONE
        self.security = SMTPSecurity(security)
        self.use_ssl = self.security == SMTPSecurity.SSL
        self.use_tls = self.security == SMTPSecurity.STARTTLS
        self.ssl_cafile = settings.SMTP_SSL_CAFILE if ssl_cafile is None else ssl_cafile
        self.label = label or f"{self.host}:{self.port}"

    @cached_property
    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ssl_cafile or None)
        if self.ssl_certfile or self.ssl_keyfile:
            context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile)
        return context

    def open(self) -> bool | None:
        """Connect, secure and log in; True when a new connection was made, False when one is open."""
        if self.connection:
            return False
        self._discard_partial()
        params = {"local_hostname": DNS_NAME.get_fqdn(), "timeout": self.timeout}
        try:
            if self.security == SMTPSecurity.SSL:
                self._partial_connection = smtplib.SMTP_SSL(self.host, self.port, context=self.ssl_context, **params)
            else:
                self._partial_connection = smtplib.SMTP(self.host, self.port, **params)
            connection = self._partial_connection
            if self.security in (SMTPSecurity.STARTTLS, SMTPSecurity.STARTTLS_IF_OFFERED):
                connection.ehlo()
                if self.security == SMTPSecurity.STARTTLS or connection.has_extn("starttls"):
                    connection.starttls(context=self.ssl_context)  # SMTPNotSupportedError when not offered
            if self.username and self.password:
                connection.login(self.username, self.password)
        except OSError:  # smtplib's and ssl's errors included
            self._discard_partial()
            if not self.fail_silently:
                raise
            return None
        self.connection, self._partial_connection = connection, None
        return True

    def _send(self, email_message) -> bool:
        """Django's `_send`, with the envelope addresses read once (`envelope_address`)."""
        if not email_message.recipients():
            return False
        encoding = email_message.encoding or settings.DEFAULT_CHARSET
        from_email = envelope_address(email_message.from_email, encoding)
        recipients = [envelope_address(address, encoding) for address in email_message.recipients()]
        message = email_message.message()
        try:
            self.connection.sendmail(from_email, recipients, message.as_bytes(linesep="\r\n"))
        except smtplib.SMTPException:
            if not self.fail_silently:
                raise
            return False
        return True

    def _discard_partial(self) -> None:
        """Drop a connection that failed half-way without a QUIT: its state is unknown."""
        if self._partial_connection is not None:
            with contextlib.suppress(OSError):
                self._partial_connection.close()
            self._partial_connection = None


_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9.-]+\Z")


def envelope_address(address: str, encoding: str) -> str:
    """The address for MAIL FROM / RCPT TO: Django's `sanitize_address`, minus its cost where
    it would change nothing.

    Parsing an address costs about 0.2 ms, as much as a third of sending a message to a
    local relay. A plain ASCII `local@domain` (every address was checked when the message
    was accepted, `recipients.parse_address`) is already what `sanitize_address` returns; the
    rest (display names, IDN domains, non-ASCII local parts) goes through it, cached, since
    the From is the same for every message.
    """
    if _PLAIN_ADDRESS.match(address):
        return address
    return _sanitized(address, encoding)


@functools.lru_cache(maxsize=1024)
def _sanitized(address: str, encoding: str) -> str:
    return sanitize_address(address, encoding)
