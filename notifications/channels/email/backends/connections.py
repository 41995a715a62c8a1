"""One kept-open email backend per sending thread, so a worker reuses its connections.

Opening an SMTP connection (TCP, EHLO, STARTTLS, AUTH) costs more than sending a message
over it. The delivery service therefore sends through `send_email()`, which keeps the
configured backend (and so its connection) open between messages, reopens it once when the
server dropped it, and hands back what sent the message. Each sending thread keeps a backend
(and so a connection) of its own: a worker sending `OUTBOX_CONCURRENCY` messages at once
(`core.outbox.drain`) holds that many connections per server, each used by one thread at a time.

The backend is rebuilt when an email setting changes (tests, `override_settings`) and
forgotten, never closed, in a forked child: the parent owns those sockets.
"""
from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from django.core.mail import get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.smtp import EmailBackend as DjangoSMTPBackend
from django.core.mail.message import EmailMessage as DjangoEmail
from django.core.signals import setting_changed

from notifications.exceptions import DeliveryOutcomeUnknown, NothingSent, ServerUnreachable

from notifications.channels.email.backends.errors import data_was_sent, is_connection_lost
from notifications.channels.email.backends.providers import provider_key

logger = logging.getLogger(__name__)

_lock = threading.RLock()  # guards `_backends`, the kept-open backends of every thread
_backends: dict[Hashable, BaseEmailBackend] = {}  # connection id (a thread ident, a slot) -> its backend
SETTING_PREFIXES = ("EMAIL_", "SMTP_", "ANYMAIL", "NOTIFICATIONS_ENCRYPTION_KEY")


@dataclass(frozen=True)
class Handed:
    """What took a message: its name for staff (`sent_via`) and its provider key
    (`Message.provider`, `backends.providers`)."""

    sent_via: str
    provider: str


def send_email(
    email: DjangoEmail, *, when_open: Callable[[], None] | None = None, connection_id: Hashable | None = None,
) -> Handed:
    """Send one message on this process's backend; returns what took it. `when_open` is called
    once its connection is open, just before the message goes (a rate cap's grant, taken as late
    as it can be, so the relay sees the pace the grants keep). `connection_id` names the
    kept-open connection to use (one capped slot's), by default this thread's own.

    A backend choosing among servers (`DatabaseSMTPBackend`) names the one it used on the
    email (`sent_via`, `sent_provider`); any other is named by itself.
    """
    backend = _current_backend(connection_id)
    send_reusing_connection(backend, email, when_open=when_open)
    return Handed(sent_via=getattr(email, "sent_via", "") or backend_label(backend),
                  provider=getattr(email, "sent_provider", "") or provider_key(backend))


def sends_message_bytes() -> bool:
    """Whether this process's backend sends `email.message().as_bytes()` unchanged.

    Django's SMTP backend and its subclasses (our `SMTPBackend`) do; so a prebuilt message
    (`channels.email.mime.PrebuiltEmail`) goes through them as it is. `DatabaseSMTPBackend` is not
    one: a server of its own may change the From.
    """
    return isinstance(_current_backend(), DjangoSMTPBackend)


def configured_backend_sends_bytes() -> bool:
    """Whether `EMAIL_BACKEND` names a backend that sends prebuilt bytes (see above).

    Read from the setting, without building a backend: the sending side asks it before
    spending time and storage on bytes that the delivery side would not use.
    """
    from django.conf import settings
    from django.utils.module_loading import import_string

    return issubclass(import_string(settings.EMAIL_BACKEND), DjangoSMTPBackend)


def send_reusing_connection(
    backend: BaseEmailBackend, email: DjangoEmail, *, when_open: Callable[[], None] | None = None,
) -> None:
    """Send on the backend's open connection, opening it if needed, and leave it open.

    When the server had dropped a connection we reused, nothing was accepted on it: the
    connection is reopened and the message sent once more. A drop on a fresh connection is
    an error like any other, and any error closes the connection. An error once the message
    itself was on its way (`errors.data_was_sent`) is `DeliveryOutcomeUnknown`: it is never
    sent again, here or on another server.
    """
    reused = open_connection(backend) is False
    if when_open is not None:
        when_open()
    try:
        try:
            sent = backend.send_messages([email])
        except Exception as exc:
            if not (reused and is_connection_lost(exc)) or data_was_sent(exc):
                raise
            logger.info("The server dropped the kept-open connection of %s; reconnecting.", backend_label(backend))
            close_quietly(backend)
            open_connection(backend)
            sent = backend.send_messages([email])
    except Exception as exc:
        # After a failure the session's state is unknown: the next message starts afresh.
        close_quietly(backend)
        if data_was_sent(exc):
            raise DeliveryOutcomeUnknown(backend_label(backend), exc) from exc
        if not getattr(exc, "server", ""):
            exc.server = backend_label(backend)  # the failed attempt names who refused it, as a sent one does
        raise
    if sent != 1:
        raise NothingSent(f"The email backend {backend_label(backend)} reported that nothing was sent.")


def open_connection(backend: BaseEmailBackend) -> bool | None:
    """Open the backend's connection (False: it was open), or raise `ServerUnreachable`.

    A failure here (refused, no greeting, no TLS, login refused) happened before anything of
    the message was tried: the retry policy treats it as the server's outage.
    """
    try:
        return backend.open()
    except Exception as exc:
        raise ServerUnreachable(backend_label(backend), exc) from exc


def backend_label(backend: BaseEmailBackend) -> str:
    """A short name for `sent_via`: the ESP, the SMTP server, or the backend's module."""
    if getattr(backend, "label", ""):
        return backend.label
    if getattr(backend, "esp_name", ""):
        return backend.esp_name
    if getattr(backend, "host", ""):
        return f"{backend.host}:{backend.port}"
    return type(backend).__module__.rpartition(".")[2]


def close_quietly(backend: BaseEmailBackend) -> None:
    try:
        backend.close()
    except Exception:  # noqa: BLE001 - a connection being discarded may fail in any way
        logger.debug("Closing %s failed; discarding it.", backend_label(backend), exc_info=True)


def close_all() -> None:
    """Close this process's connections, every thread's (worker shutdown, tests, a settings
    change, a drain's end under a connection cap): call it while no send is in flight."""
    with _lock:
        backends = list(_backends.values())
        _backends.clear()
    for backend in backends:
        close_quietly(backend)


def close_one(connection_id: Hashable) -> None:
    """Close one kept-open connection (a lapsed slot's); it reopens on next use."""
    with _lock:
        backend = _backends.pop(connection_id, None)
    if backend is not None:
        close_quietly(backend)


def _current_backend(connection_id: Hashable | None = None) -> BaseEmailBackend:
    """The kept-open backend of `connection_id` (by default this thread's), built on first use;
    one thread uses it at a time."""
    ident = threading.get_ident() if connection_id is None else connection_id
    backend = _backends.get(ident)
    if backend is None:
        backend = get_connection(fail_silently=False)
        with _lock:
            _backends[ident] = backend
    return backend


def _forget_in_child() -> None:
    global _backends, _lock
    _backends, _lock = {}, threading.RLock()


def _on_setting_changed(*, setting: str, **kwargs) -> None:
    if setting.startswith(SETTING_PREFIXES):
        close_all()


setting_changed.connect(_on_setting_changed, dispatch_uid="notifications.channels.email.backends.connections")
os.register_at_fork(after_in_child=_forget_in_child)
