"""The benchmarks' SMTP sink: accepts every message and logs when each one arrived.

    python bench/_sink.py PORT LOGFILE [--delay SECONDS] [--max-connections K]

One line per message, written as the DATA is accepted (before the 250 goes back):
`<X-Notification-Id or -> <time.time()>`. The clock is the machine's wall clock, so the
benchmark compares it with the moments it took in other processes. Nothing else is
parsed: the sink must cost as little as aiosmtpd's own `Sink` handler, since its speed is
the transport limit every client is measured against. Stops on SIGTERM or SIGINT.

`--delay`: the 250 to DATA goes back that long after the message arrived (a real relay's 20 ms;
each connection waits on its own, the others go on). `--max-connections`: a connection beyond
K open ones is refused with 421 (`notifications/tests/support/relays.py`, shared with the tests);
on exit the sink prints the most connections it held at once and how many it refused.
"""
from __future__ import annotations

import argparse
import asyncio
import re
import signal
import sys
import time
from pathlib import Path

from aiosmtpd.smtp import SMTP

HEADER = re.compile(rb"^X-Notification-Id:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)


class Recorder:
    def __init__(self, log, delay: float = 0.0) -> None:
        self.log = log
        self.delay = delay

    async def handle_DATA(self, server, session, envelope) -> str:
        content = envelope.original_content or envelope.content
        head = content.split(b"\r\n\r\n", 1)[0]
        found = HEADER.search(head)
        self.log.write(f"{found[1].decode() if found else '-'} {time.time():.6f}\n")
        if self.delay:
            await asyncio.sleep(self.delay)
        return "250 Message accepted for delivery"


async def serve(port: int, log, *, delay: float = 0.0, max_connections: int | None = None) -> None:
    loop = asyncio.get_running_loop()
    handler = Recorder(log, delay)
    protocols, concurrency = (lambda: SMTP(handler, hostname="bench-sink")), None
    if max_connections is not None:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from notifications.tests.support.relays import Concurrency, capped_protocols

        concurrency = Concurrency()
        protocols = capped_protocols(handler, max_connections=max_connections, concurrency=concurrency,
                                     hostname="bench-sink")
    server = await loop.create_server(protocols, "127.0.0.1", port)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    server.close()
    if concurrency is not None:
        print(f"most connections at once {concurrency.peak}, refused {concurrency.refused}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("log")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--max-connections", type=int)
    args = parser.parse_args()
    with open(args.log, "a", buffering=1, encoding="ascii") as arrivals:  # line-buffered: each one seen at once
        asyncio.run(serve(args.port, arrivals, delay=args.delay, max_connections=args.max_connections))
