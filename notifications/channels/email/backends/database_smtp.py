"""`DatabaseSMTPBackend`: SMTP servers edited in the admin, lowest `order` first, with failover.

For every message the active `SMTPServerConfig` rows are read again, so an edit applies to
the next message without a restart. The servers are tried in order; one that cannot be
reached, drops us or refuses the login hands over to the next, and the message records the
name of the one that took it (`sent_via`). A refusal of the message itself (sender,
recipients, content) is raised at once: another server would refuse it too.

One connection per server is kept open between messages, and reopened when the row's
connection settings change. No active row is a transient error: an operator can add one.

A server that failed rests for `SMTP_FAILOVER_COOLDOWN_SECONDS`: meanwhile it is tried only
after the others, so a primary that times out costs its timeout once, not on every message
(a batch of fifty behind a blackholed host would otherwise wait fifty timeouts). An edit of
its connection settings in the admin ends the rest at once.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from email.utils import formataddr, parseaddr

from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.message import EmailMessage as DjangoEmail
from django.db import DatabaseError

from notifications.exceptions import AllSMTPServersFailed, NoSMTPServerConfigured
from notifications.models import SMTPServerConfig

from notifications.channels.email.backends.connections import close_quietly, send_reusing_connection
from notifications.channels.email.backends.errors import classify_delivery_error, is_server_unusable
from notifications.channels.email.backends.providers import SMTP, smtp_provider
from notifications.channels.email.backends.smtp import SMTPBackend

logger = logging.getLogger(__name__)


@dataclass
class _OpenServer:
    fingerprint: tuple
    backend: SMTPBackend


class DatabaseSMTPBackend(BaseEmailBackend):
    """Send through the SMTP servers configured in the admin (`SMTPServerConfig`)."""

    label = ""  # each message names its own server in `sent_via`

    @classmethod
    def provider_keys(cls) -> set[str]:
        """The provider keys its messages may record (`backends.providers`): one per usable
        server's host, read without sending, so the webhook routes know whose events to take."""
        try:
            hosts = list(SMTPServerConfig.objects.usable().values_list("host", flat=True))
        except DatabaseError:  # no table yet (`manage.py check` before `migrate`)
            hosts = []
        return {smtp_provider(host) for host in hosts} or {SMTP}

    def __init__(self, fail_silently: bool = False, **kwargs) -> None:
        super().__init__(fail_silently=fail_silently)
        self._servers: dict = {}
        self._resting: dict[tuple, float] = {}  # (pk, connection fingerprint) -> monotonic end of rest

    def open(self) -> None:
        """Connections are opened per server, on first use."""
        return None

    def close(self) -> None:
        for server in self._servers.values():
            close_quietly(server.backend)
        self._servers.clear()

    def send_messages(self, email_messages) -> int:
        sent = 0
        for email in email_messages:
            if not email.recipients():
                continue
            try:
                self._send(email)
            except Exception:
                if not self.fail_silently:
                    raise
                continue
            sent += 1
        return sent

    def _send(self, email: DjangoEmail) -> None:
        configs = list(SMTPServerConfig.objects.usable())
        if not configs:
            raise NoSMTPServerConfigured()
        self._forget_servers_except({config.pk for config in configs})
        requested_from = email.from_email
        failures = []
        for config in self._in_turn(configs):
            email.from_email = _sender(requested_from, config)
            try:
                send_reusing_connection(self._server(config), email)
            except Exception as exc:
                if not is_server_unusable(exc):
                    email.from_email = requested_from
                    raise
                self._forget(config.pk)
                self._rest(config)
                failures.append((config.name, config.address, exc))
                logger.warning(
                    "SMTP server %r (%s) is unusable, trying the next: %s",
                    config.name, config.address, classify_delivery_error(exc),
                )
                continue
            self._resting.pop(_rest_key(config), None)
            email.sent_via = config.name
            email.sent_provider = smtp_provider(config.host)  # from the host, never the editable name
            return
        email.from_email = requested_from
        raise AllSMTPServersFailed(failures)

    def _in_turn(self, configs: list[SMTPServerConfig]) -> list[SMTPServerConfig]:
        """The servers in `order`, those resting after a failure moved behind the others."""
        now = time.monotonic()
        keys = {_rest_key(config) for config in configs}
        self._resting = {key: until for key, until in self._resting.items() if key in keys and until > now}
        return sorted(configs, key=lambda config: _rest_key(config) in self._resting)  # stable: order kept

    def _rest(self, config: SMTPServerConfig) -> None:
        cooldown = settings.SMTP_FAILOVER_COOLDOWN_SECONDS
        if cooldown > 0:
            self._resting[_rest_key(config)] = time.monotonic() + cooldown

    def _server(self, config: SMTPServerConfig) -> SMTPBackend:
        """This server's kept-open backend, rebuilt when its connection settings changed."""
        fingerprint = config.connection_fingerprint()
        current = self._servers.get(config.pk)
        if current is not None and current.fingerprint == fingerprint:
            return current.backend
        self._forget(config.pk)
        backend = SMTPBackend(
            host=config.host,
            port=config.port,
            username=config.username,
            password=config.get_password(),
            use_tls=False,
            use_ssl=False,
            security=config.security,
            timeout=config.timeout_seconds,
            label=config.name,
            fail_silently=False,
        )
        self._servers[config.pk] = _OpenServer(fingerprint, backend)
        return backend

    def _forget(self, pk) -> None:
        server = self._servers.pop(pk, None)
        if server is not None:
            close_quietly(server.backend)

    def _forget_servers_except(self, keep: set) -> None:
        for pk in set(self._servers) - keep:
            self._forget(pk)


def _rest_key(config: SMTPServerConfig) -> tuple:
    return (config.pk, config.connection_fingerprint())


def _sender(requested: str, config: SMTPServerConfig) -> str:
    """The server's own from address, when it has one, under the requested display name."""
    if not config.from_email:
        return requested
    return formataddr((parseaddr(requested)[0], config.from_email))
