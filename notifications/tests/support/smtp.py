"""A real SMTP server (aiosmtpd) that records what arrives, parsed as a mail client would."""
from __future__ import annotations

import asyncio
import email
import threading
import time
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage as ParsedMessage

from aiosmtpd.controller import Controller

from .services import free_port


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: ParsedMessage


class RecordingHandler:
    def __init__(self, *, delay: float = 0.0) -> None:
        self.delay = delay
        self.received: list[Received] = []
        self.connections = 0
        self._lock = threading.Lock()

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        with self._lock:
            self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        raw = envelope.original_content or envelope.content
        parsed = email.message_from_bytes(raw, policy=policy.default)
        with self._lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), raw, parsed))
        return "250 Message accepted for delivery"


class SMTPServer:
    """Start with `start()`, read `received`, stop with `stop()`."""

    def __init__(self, *, delay: float = 0.0, port: int | None = None) -> None:
        self.handler = RecordingHandler(delay=delay)
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.controller = Controller(self.handler, hostname=self.host, port=self.port)

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def start(self) -> "SMTPServer":
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def wait_for(self, count: int, *, timeout: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.received)
