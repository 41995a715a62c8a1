"""The benchmarks' SMTP sink: accepts every message and logs when each one arrived.

    python bench/_sink.py PORT LOGFILE

One line per message, written as the DATA is accepted (before the 250 goes back):
`<X-Notification-Id or -> <time.time()>`. The clock is the machine's wall clock, so the
benchmark compares it with the moments it took in other processes. Nothing else is
parsed: the sink must cost as little as aiosmtpd's own `Sink` handler, since its speed is
the transport limit every client is measured against. Stops on SIGTERM or SIGINT.
"""
from __future__ import annotations

import asyncio
import re
import signal
import sys
import time

from aiosmtpd.smtp import SMTP

HEADER = re.compile(rb"^X-Notification-Id:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)


class Recorder:
    def __init__(self, log) -> None:
        self.log = log

    async def handle_DATA(self, server, session, envelope) -> str:
        content = envelope.original_content or envelope.content
        head = content.split(b"\r\n\r\n", 1)[0]
        found = HEADER.search(head)
        self.log.write(f"{found[1].decode() if found else '-'} {time.time():.6f}\n")
        return "250 Message accepted for delivery"


async def serve(port: int, log) -> None:
    loop = asyncio.get_running_loop()
    handler = Recorder(log)
    server = await loop.create_server(lambda: SMTP(handler, hostname="bench-sink"), "127.0.0.1", port)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    server.close()


if __name__ == "__main__":
    with open(sys.argv[2], "a", buffering=1, encoding="ascii") as arrivals:  # line-buffered: each one seen at once
        asyncio.run(serve(int(sys.argv[1]), arrivals))
