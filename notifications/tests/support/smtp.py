"""A real SMTP server (aiosmtpd) that records what arrives, parsed as a mail client would.

Options make it behave like the servers delivery meets: slow (`delay`), closing a connection
after so many messages on it (`drop_every`), refusing some recipients (`rcpt_replies`),
STARTTLS or implicit TLS (`tls`, `implicit_tls`), AUTH LOGIN required (`login`).
"""
from __future__ import annotations

import asyncio
import email
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from functools import cached_property
from email import policy
from email.message import EmailMessage as ParsedMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from notifications.tests.support.services import free_port


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: ParsedMessage
    tls: bool = False
    login: str | None = None
    at: float = 0.0  # time.time() when its DATA arrived, before the server answered

    @cached_property
    def notification_id(self) -> str | None:
        """Its `X-Notification-Id`, read once (a header lookup parses it each time)."""
        return self.message["X-Notification-Id"]


class RecordingHandler:
    def __init__(
        self, *, delay: float = 0.0, drop_every: int | None = None, rcpt_replies: dict[str, str] | None = None
    ) -> None:
        self.delay = delay
        self.drop_every = drop_every
        self.rcpt_replies = rcpt_replies or {}
        self.received: list[Received] = []
        self.auth_mechanisms: list[str] = []
        self._peers: set = set()
        self._lock = threading.Lock()

    @property
    def connections(self) -> int:
        """TCP connections that said EHLO (once each, even when STARTTLS makes them say it twice)."""
        return len(self._peers)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        with self._lock:
            self._peers.add(session.peer)
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        """Refuse the addresses of `rcpt_replies` with their reply; accept the others."""
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        """Take the message, then answer (after `delay`: a server whose answer may come too late)."""
        raw = envelope.original_content or envelope.content
        parsed = email.message_from_bytes(raw, policy=policy.default)
        tls = server.transport.get_extra_info("ssl_object") is not None
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        with self._lock:
            self.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), raw, parsed, tls, login, at=time.time())
            )
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.drop_every:
            session.messages_here = getattr(session, "messages_here", 0) + 1
            if session.messages_here % self.drop_every == 0:
                # Runs once the 250 below is written: the message is accepted, then the line drops.
                asyncio.get_running_loop().call_soon(server.transport.close)
        return "250 Message accepted for delivery"


class SMTPServer:
    """Start with `start()`, read `received`, stop with `stop()`."""

    def __init__(
        self,
        *,
        delay: float = 0.0,
        port: int | None = None,
        drop_every: int | None = None,
        rcpt_replies: dict[str, str] | None = None,
        tls: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        login: tuple[str, str] | None = None,
    ) -> None:
        self.handler = RecordingHandler(delay=delay, drop_every=drop_every, rcpt_replies=rcpt_replies)
        self.port = port or free_port()
        self.host = "127.0.0.1"
        options: dict = {}
        if tls is not None and implicit_tls:
            options["ssl_context"] = tls
        elif tls is not None:
            options.update(tls_context=tls, require_starttls=True)
        if login is not None:
            options.update(
                authenticator=self._authenticator(login),
                auth_required=True,
                # aiosmtpd only counts STARTTLS as TLS; an implicit-TLS connection is encrypted already.
                auth_require_tls=tls is not None and not implicit_tls,
                auth_exclude_mechanism=["PLAIN"],  # leave LOGIN, so clients use AUTH LOGIN
            )
        self.controller = Controller(self.handler, hostname=self.host, port=self.port, **options)

    def _authenticator(self, login: tuple[str, str]):
        expected = LoginPassword(login[0].encode(), login[1].encode())

        def authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
            self.handler.auth_mechanisms.append(mechanism)
            return AuthResult(success=auth_data == expected, handled=False, auth_data=auth_data)

        return authenticate

    @property
    def connections(self) -> int:
        return self.handler.connections

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def start(self) -> SMTPServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        """Stop listening and drop every open connection; stopping twice is harmless."""
        if self.controller._thread is not None:
            self.controller.stop()

    def wait_for(self, count: int, *, timeout: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.received)


class SilentServer:
    """A host that takes TCP connections and never says a word: a client waits for its timeout.

    It counts the connections it was offered, so a test can tell how often a client tried it.
    """

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.host, self.port = self._socket.getsockname()[:2]
        self._held: list[socket.socket] = []
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def connections(self) -> int:
        return len(self._held)

    def start(self) -> SilentServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._socket.close()
        for held in self._held:
            held.close()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            self._held.append(connection)  # held open, never answered
