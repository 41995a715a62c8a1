"""Where the write path's time goes: `send_mail_template` per recipient, in this process, profiled.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/SCRATCH_DB .venv/bin/python bench/profile_send.py [--n 500]
        [--top 40] [--no-profile] [--redis]

The same call `bench/pipeline.py` times ("sends/s"): the monthly invoice with its PDF, one
call per recipient, `EMAIL_BACKEND` the project's SMTP backend (so the MIME is prebuilt) and
`OUTBOX_ACTIVE` on (rows are `queued`, the wake-up is registered). The database named by
DATABASE_URL is flushed, migrated and loaded with the default templates: give it a
scratch database. `--redis` starts a redis-server on a free port as the broker, as the
pipeline has (the wake-up's `SET NX` then costs its round trip per commit); without it and
without CELERY_BROKER_URL, Celery runs eagerly and every commit drains the lane in this
process (against an SMTP port nobody listens on), which is not the write path alone: use
`--redis`. Prints the queries of a warm send, sends/s, this process's CPU per send, and the
top functions (`PROFILE_SORT=tottime` to sort by own time). Figures only.
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from _setup import ROOT, setup  # noqa: F401  (puts the project on sys.path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--redis", action="store_true")
    args = parser.parse_args()
    redis_process = None
    if args.redis:
        port = free_port()
        redis_process = subprocess.Popen(
            [shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", tempfile.mkdtemp(prefix="profile-redis-")],
            stdout=subprocess.DEVNULL,
        )
        time.sleep(0.3)
        os.environ["CELERY_BROKER_URL"] = f"redis://127.0.0.1:{port}/0"
    os.environ.update({
        "EMAIL_BACKEND": "notifications.backends.SMTPBackend", "OUTBOX_ACTIVE": "true", "DEBUG": "false",
        "SMTP_HOST": "127.0.0.1", "SMTP_PORT": "1", "SMTP_USE_TLS": "false", "SMTP_USE_SSL": "false",
    })
    try:
        run(args)
    finally:
        if redis_process is not None:
            redis_process.terminate()
            redis_process.wait()


def run(args: argparse.Namespace) -> None:
    setup()
    import json

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from notifications.channels.email.sending import send_mail_template
    from notifications.tests.support.files import make_pdf

    key = "billing_invoice_monthly"
    variables = json.loads((ROOT / "fixtures" / "email_templates" / key / "template.json").read_text())["sample_variables"]
    pdf = make_pdf()

    def send(i: int) -> None:
        send_mail_template(key, f"reseller{i}@example.com", {**variables, "invoice_number": f"INV-{i:06d}"},
                           attachments=[("invoice.pdf", pdf, "application/pdf")])

    send(0)  # warm: first compile, first blob
    with CaptureQueriesContext(connection) as queries:
        send(1)
    print(f"queries for a warm send: {len(queries)}")
    for query in queries.captured_queries:
        print("   ", query["sql"][:140])
    profiler = None if args.no_profile else cProfile.Profile()
    started, cpu_started = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    for i in range(2, 2 + args.n):
        send(i)
    if profiler:
        profiler.disable()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    print(f"{args.n} sends in {elapsed:.2f} s: {args.n / elapsed:.0f} sends/s"
          f"{' (under cProfile)' if profiler else ''}; this process's CPU {cpu / args.n * 1000:.2f} ms a send "
          f"(the rest of {elapsed / args.n * 1000:.2f} ms is waiting: PostgreSQL, Redis, the machine)", flush=True)
    if profiler:
        pstats.Stats(profiler, stream=sys.stdout).sort_stats(os.environ.get("PROFILE_SORT", "cumulative")).print_stats(args.top)


if __name__ == "__main__":
    main()
