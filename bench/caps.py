"""What a cap check costs a sender: `core.caps` against a Redis of its own, and within the process.

    .venv/bin/python bench/caps.py [--calls 20000]

Starts a redis-server on a free port (stopped at the end), then times, per call, the wall time
and this process's CPU of: `take_rate` (a rate high enough never to hold back), `try_slot` +
`release` (a slot taken and given back), `Slot.keep()` (no round trip until half the lease has
passed), and the same on the process-local store. Issue 21 budgets the worker's whole CPU per
message at 0.3 ms: these are the share a cap check would take. Figures only.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _pipeline_support import free_port  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def timed(label: str, calls: int, call, *, per: int = 1) -> None:
    """`call` run `calls` times; the wall time and CPU printed per call, divided by `per`."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(calls):
        call()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    each = calls * per
    print(f"| {label} | {wall / each * 1e6:.0f} µs | {cpu / each * 1e6:.0f} µs |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20000)
    calls = parser.parse_args().calls
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="notif-bench-caps-") as tmp:
        redis_server = subprocess.Popen([shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1",
                                         "--save", "", "--appendonly", "no", "--dir", tmp],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            os.environ.update(DJANGO_SETTINGS_MODULE="config.settings.base", CELERY_BROKER_URL="",
                              OUTBOX_SHARED_STATE_URL=f"redis://127.0.0.1:{port}/0", LOG_LEVEL="WARNING")
            import django
            import redis

            django.setup()
            for _ in range(100):
                try:
                    redis.Redis(port=port).ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.05)
            from django.conf import settings

            from notifications.core import caps

            print(f"{calls} calls each; per call:\n\n| check | wall | CPU of this process |\n|---|---|---|")
            for store in ("redis", "process"):
                settings.OUTBOX_SHARED_STATE_URL = f"redis://127.0.0.1:{port}/0" if store == "redis" else ""
                timed(f"{store}: take_rate (never held back)", calls,
                      lambda: caps.take_rate("bench", per_second=10_000_000))
                timed(f"{store}: take_rates, 16 at once (per grant)", calls // 16,
                      lambda: caps.take_rates("bench16", per_second=10_000_000, wanted=16), per=16)
                timed(f"{store}: try_slot + release", calls,
                      lambda: caps.try_slot("bench", limit=16, lease_seconds=60).release())
                slot = caps.acquire_slot("bench", limit=16, lease_seconds=60)
                timed(f"{store}: Slot.keep() within half its lease", calls, slot.keep)
                slot.release()
        finally:
            redis_server.terminate()
            redis_server.wait(10)


if __name__ == "__main__":
    main()
