"""The broker down: what a send costs while it is, and how soon mail leaves once it is back (issue 17).

    DATABASE_URL=postgres://... .venv/bin/python bench/broker_outage.py [N]

Starts its own redis-server, the SMTP sink and one worker as the README runs it (`-c 2`, no
beat), then: times sends with the broker up; stops Redis; times N sends (the first finds it
down, the others know it and never try it); starts Redis again on the same port and times
until every one of the N arrived at the sink, with no sweep running. Prints the figures;
asserts nothing. Without DATABASE_URL a temporary SQLite file is used.
"""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _pipeline_support import Processes, Redis, Sink, interrupt_on_signals, wait_for_port

WORKDIR = Path(tempfile.mkdtemp(prefix="notif-outage-"))


def start_redis(processes: Processes, port: int) -> subprocess.Popen:
    process = processes.start("redis", [shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1",
                                        "--save", "", "--appendonly", "no", "--dir", str(WORKDIR)],
                              log=WORKDIR / "redis.log")
    wait_for_port(port, process, "redis-server")
    return process


def start_worker(processes: Processes, sink: Sink) -> subprocess.Popen:
    log = WORKDIR / "worker.log"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.base", "ENVIRONMENT": "development",
           "LOG_LEVEL": "INFO", "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
           "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(sink.port), "SMTP_USE_TLS": "false", "SMTP_USER": "",
           "SMTP_PASSWORD": ""}
    process = processes.start("worker", [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q",
                                         "urgent,default,bulk", "-c", "2", "-l", "INFO"], log=log, env=env)
    deadline = time.monotonic() + 60
    while "ready." not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the worker did not start:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.1)
    return process


def timed_sends(count: int, prefix: str) -> tuple[list[str], list[float]]:
    from notifications.models import EmailTemplate
    from notifications.channels.email.sending import send_mail_template

    variables = EmailTemplate.objects.get(key="rma_confirmation").sample_variables
    ids, seconds = [], []
    for index in range(count):
        started = time.perf_counter()
        [message] = send_mail_template("rma_confirmation", f"{prefix}{index}@example.com", variables)
        seconds.append(time.perf_counter() - started)
        ids.append(str(message.pk))
    return ids, seconds


def describe(seconds: list[float]) -> str:
    ordered = sorted(seconds)
    return (f"median {statistics.median(ordered) * 1000:.1f} ms, p99 {ordered[int(len(ordered) * 0.99) - 1] * 1000:.1f}"
            f" ms, max {ordered[-1] * 1000:.1f} ms")


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    interrupt_on_signals()
    processes = Processes()
    try:
        redis = Redis(processes, WORKDIR)
        sink = Sink(processes, WORKDIR)
        os.environ["CELERY_BROKER_URL"] = redis.url
        from _setup import describe_database, setup

        setup()
        from notifications.core.outbox import wakeups

        start_worker(processes, sink)
        up_ids, up = timed_sends(count, "up")
        sink.wait_for(up_ids)
        print(f"{count} sends, broker up, on {describe_database()}: {describe(up)}")

        processes.stop(redis.process)
        down_ids, down = timed_sends(count, "down")
        print(f"{count} sends, broker down: first (finds it down) {down[0] * 1000:.1f} ms; the other "
              f"{count - 1} (known down: not tried) {describe(down[1:])}; known down: {wakeups.known_down()}")

        back = time.time()
        start_redis(processes, redis.port)
        arrivals = sink.wait_for(down_ids, stall=120)
        missing = [i for i, times in arrivals.items() if not times]
        last = max(min(times) for times in arrivals.values() if times)
        first = min(min(times) for times in arrivals.values() if times)
        print(f"broker back: first of the {count} arrived after {first - back:.2f} s, the last after "
              f"{last - back:.2f} s (no sweep running); missing {len(missing)}; "
              f"BROKER_RECONNECT_MAX_SECONDS={os.environ.get('BROKER_RECONNECT_MAX_SECONDS', '2 (default)')}")
    finally:
        processes.stop_all()


if __name__ == "__main__":
    main()
