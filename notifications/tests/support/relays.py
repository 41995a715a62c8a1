"""Relays shaped like the ones delivery meets, for the caps' acceptance tests and the benchmarks.

- `Relay`: the real SMTP server of `support.smtp` (aiosmtpd) that answers DATA after `delay`
  (20 ms: a real relay's pace, where a relay that answers at once hides the cost of waiting),
  refuses a connection beyond `max_connections` with 421 (as Office 365 does past 3), and keeps
  each message's arrival time (`Received.at`) and how many connections it held at once. The
  messages whose `X-Notification-Id` is in `stall_ids` get no answer to DATA for `stall_seconds`
  (a DATA timeout on one connection while the others go on).
- `SendGridAPI`: an HTTP server shaped like SendGrid's v3 `POST /v3/mail/send` (202, an
  `X-Message-Id`), answering after `delay` (100 ms); anymail's SendGrid backend is pointed at it
  with `ANYMAIL["SENDGRID_API_URL"] = api.url + "/v3/"`. It keeps each call's arrival time,
  the `X-Notification-Id` it carried, and how many calls it served at once.

`capped_protocols` is the connection cap alone, shared with the benchmark's sink (`bench/_sink.py`).
"""
from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from .smtp import RecordingHandler, SMTPServer

_NOTIFICATION_ID = re.compile(rb"^X-Notification-Id:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)
REFUSAL = b"421 4.7.0 Too many concurrent connections, try again later\r\n"


@dataclass
class Concurrency:
    """Connections (or calls) held at once: now, at most so far, and those refused over the cap."""

    live: int = 0
    peak: int = 0
    refused: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def enter(self, limit: int | None = None) -> bool:
        with self.lock:
            if limit is not None and self.live >= limit:
                self.refused += 1
                return False
            self.live += 1
            self.peak = max(self.peak, self.live)
            return True

    def leave(self) -> None:
        with self.lock:
            self.live -= 1


class _Refusal(asyncio.Protocol):
    """A connection over the cap: 421 at once, then closed, as a relay over its limit answers."""

    def connection_made(self, transport) -> None:
        transport.write(REFUSAL)
        transport.close()


def capped_protocols(handler, *, max_connections: int | None, concurrency: Concurrency, **smtp_options):
    """An asyncio protocol factory: an aiosmtpd `SMTP` session per connection while fewer than
    `max_connections` are open, a 421 refusal beyond (None: no cap)."""

    class CountedSMTP(SMTP):
        def connection_lost(self, error) -> None:
            try:
                super().connection_lost(error)
            finally:
                concurrency.leave()

    def factory():
        if not concurrency.enter(max_connections):
            return _Refusal()
        return CountedSMTP(handler, **smtp_options)

    return factory


class _CappedController(Controller):
    def __init__(self, handler, *, max_connections: int | None, concurrency: Concurrency, **options) -> None:
        super().__init__(handler, **options)
        self._protocols = capped_protocols(handler, max_connections=max_connections, concurrency=concurrency,
                                           **self.SMTP_kwargs)

    def factory(self):
        return self._protocols()


def relay(*, delay: float = 0.02, max_connections: int | None = None, **options):
    """A started `Relay` (stop it with `stop()`)."""
    return Relay(delay=delay, max_connections=max_connections, **options).start()


class _StallingHandler(RecordingHandler):
    def __init__(self, *, stall_ids: set[str], stall_seconds: float, **options) -> None:
        super().__init__(**options)
        self.stall_ids, self.stall_seconds = stall_ids, stall_seconds

    async def handle_DATA(self, server, session, envelope) -> str:
        head = (envelope.original_content or envelope.content).split(b"\r\n\r\n", 1)[0]
        found = _NOTIFICATION_ID.search(head)
        reply = await super().handle_DATA(server, session, envelope)  # recorded: it did arrive
        if found and found[1].decode() in self.stall_ids:
            await asyncio.sleep(self.stall_seconds)
        return reply


class Relay(SMTPServer):
    """`support.smtp.SMTPServer` with a connection cap; `concurrency.peak`, `concurrency.refused`."""

    def __init__(self, *, delay: float = 0.02, max_connections: int | None = None, stall_ids=(),
                 stall_seconds: float = 3600.0, **options) -> None:
        super().__init__(delay=delay, **options)
        if stall_ids:
            self.handler = _StallingHandler(stall_ids=set(stall_ids), stall_seconds=stall_seconds, delay=delay,
                                            drop_every=options.get("drop_every"),
                                            rcpt_replies=options.get("rcpt_replies"))
        self.concurrency = Concurrency()
        self.controller = _CappedController(self.handler, hostname=self.host, port=self.port,
                                            max_connections=max_connections, concurrency=self.concurrency)

    def arrival_times(self) -> list[float]:
        """When each message's DATA arrived (time.time()), in arrival order."""
        return [received.at for received in list(self.received)]


@dataclass
class Call:
    at: float  # time.time() when the call's body had arrived, before the answer
    notification_id: str | None
    payload: dict


class SendGridAPI:
    """`SendGridAPI(delay=0.1).start()`; `url`, `calls`, `concurrency`; `stop()`. `log`: a text file
    that also gets `<X-Notification-Id> <time.time()>` per call (the benchmark sink's format)."""

    def __init__(self, *, delay: float = 0.1, max_concurrent: int | None = None, port: int = 0, log=None) -> None:
        self.delay = delay
        self.log = log
        self.max_concurrent = max_concurrent
        self.calls: list[Call] = []
        self.concurrency = Concurrency()
        self._lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # kept-alive connections, as requests' session keeps them

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.rstrip("/") != "/v3/mail/send":
                    return self._answer(404, {"errors": [{"message": "not found"}]})
                if not api.concurrency.enter(api.max_concurrent):
                    return self._answer(429, {"errors": [{"message": "too many concurrent requests"}]})
                try:
                    payload = json.loads(body or b"{}")
                    call = Call(time.time(), notification_id(payload), payload)
                    with api._lock:
                        api.calls.append(call)
                        if api.log is not None:
                            api.log.write(f"{call.notification_id or '-'} {call.at:.6f}\n")
                    if api.delay:
                        time.sleep(api.delay)
                    self._answer(202, None, {"X-Message-Id": uuid.uuid4().hex[:22]})
                finally:
                    api.concurrency.leave()

            def _answer(self, status: int, body, headers: dict | None = None) -> None:
                payload = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                if payload:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self) -> SendGridAPI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def arrival_times(self) -> list[float]:
        return [call.at for call in list(self.calls)]


def notification_id(payload: dict) -> str | None:
    """The `X-Notification-Id` a SendGrid v3 payload carries (top-level or personalization headers)."""
    for headers in [payload.get("headers") or {}, *[p.get("headers") or {} for p in payload.get("personalizations") or []]]:
        for name, value in headers.items():
            if name.lower() == "x-notification-id":
                return value
    return None


def most_in_any_window(times: list[float], width: float = 1.0) -> int:
    """The most arrivals within any closed window of `width` seconds (a sliding window)."""
    times = sorted(times)
    most, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] > width:
            start += 1
        most = max(most, end - start + 1)
    return most
