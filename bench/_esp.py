"""The benchmarks' ESP: an HTTP API shaped like SendGrid's v3 mail/send, logging each call's arrival.

    python bench/_esp.py PORT LOGFILE [--delay SECONDS]

`notifications/tests/support/relays.py`'s `SendGridAPI` in a process of its own: 202 with an
`X-Message-Id` after `--delay` (100 ms: an ESP's pace), one line per call
`<X-Notification-Id or -> <time.time()>` as its body arrives, like `_sink.py`. Point anymail's
SendGrid backend at it with `ANYMAIL["SENDGRID_API_URL"] = "http://127.0.0.1:PORT/v3/"`
(`BENCH_SENDGRID_API_URL` in `pipeline_settings`). Stops on SIGTERM or SIGINT.
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from notifications.tests.support.relays import SendGridAPI  # noqa: E402

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("log")
    parser.add_argument("--delay", type=float, default=0.1)
    parser.add_argument("--max-connections", type=int, help="calls at once beyond this are answered 429")
    args = parser.parse_args()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with open(args.log, "a", buffering=1, encoding="ascii") as arrivals:
        api = SendGridAPI(delay=args.delay, max_concurrent=args.max_connections, port=args.port, log=arrivals).start()
        stop.wait()
        api.stop()
        print(f"most calls at once {api.concurrency.peak}, refused {api.concurrency.refused}", flush=True)
