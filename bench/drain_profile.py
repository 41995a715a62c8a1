"""Profile the drain in this process: where a worker's time goes, without Celery or a broker.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/notif_drain_profile \\
        .venv/bin/python bench/drain_profile.py [N] [--rounds 3] [--profile FILE] [--top 30]

Writes N invoices (`billing_invoice_monthly` with its PDF, one `send_mail_template` each, as
`pipeline.py` does) with their wake-ups held back, then drains the default lane with
`outbox.drain_lane` as a worker's task does (bounded by `OUTBOX_DRAIN_MAX_SECONDS`, called
again until the lane is empty), over the project's `SMTPBackend` to an aiosmtpd sink in a
process of its own (`_sink.py`). Prints msg/s per round, then the same bytes sent again over bare smtplib with no database
(the transport limit, in the same run) and, with `--profile`, cProfile's
top functions by cumulative and by own time (the last round), and the CPU time per message
of this process (the drain and its recorder thread), of the sink and of the database's
server processes, beside the wall time: when their sum nears the machine's cores times the
wall time, the drain is bound by CPU, not by waiting. The database is emptied and
migrated at start (it must be a throwaway one). Figures only: compare within one run;
`pipeline.py` measures the real path (a Celery worker).
"""
from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH.parent)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("n", nargs="?", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", help="write the last round's cProfile stats here and print the top")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()

    from _pipeline_support import free_port  # noqa: PLC0415

    port = free_port()
    log = Path(tempfile.mkdtemp(prefix="notif-drain-")) / "arrivals.log"
    sink = subprocess.Popen([sys.executable, str(BENCH / "_sink.py"), str(port), str(log)])
    os.environ.update({
        "EMAIL_BACKEND": "notifications.backends.SMTPBackend", "OUTBOX_ACTIVE": "true", "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(port), "SMTP_USE_TLS": "false", "SMTP_USE_SSL": "false", "SMTP_USER": "",
        "SMTP_PASSWORD": "", "DEBUG": "false", "CELERY_BROKER_URL": "",
    })
    try:
        import _setup  # noqa: PLC0415

        _setup.setup()
        time.sleep(0.5)
        for index in range(1, args.rounds + 1):
            profiler = cProfile.Profile() if args.profile and index == args.rounds else None
            rate, cpu = one_round(args.n, profiler, sink.pid)
            print(f"round {index}: {args.n} delivered at {rate:.0f} msg/s; CPU ms per message: "
                  + ", ".join(f"{name} {ms:.2f}" for name, ms in cpu.items()), flush=True)
            rate, cpu = transport_round(port, sink.pid)
            print(f"round {index}, the same bytes over bare smtplib (no database): {rate:.0f} msg/s; CPU ms per "
                  "message: " + ", ".join(f"{name} {ms:.2f}" for name, ms in cpu.items()), flush=True)
            if profiler is not None:
                profiler.dump_stats(args.profile)
                for order in ("cumulative", "tottime"):
                    out = io.StringIO()
                    pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(args.top)
                    print(out.getvalue())
    finally:
        sink.terminate()
        sink.wait()


def transport_round(port: int, sink_pid: int) -> tuple[float, dict[str, float]]:
    """The rows just delivered, their stored bytes sent again over one smtplib connection:
    the transport limit of `pipeline.py`, measured beside the drain in the same run."""
    import smtplib  # noqa: PLC0415

    from notifications.models import Message  # noqa: PLC0415

    prepared = [(sender, [to], bytes(mime)) for sender, to, mime
                in Message.objects.values_list("from_email", "address", "mime")]
    before = {"client": time.process_time(), "sink": cpu_seconds(sink_pid)}
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as client:
        for sender, recipients, data in prepared:
            client.sendmail(sender, recipients, data)
    seconds = time.perf_counter() - started
    after = {"client": time.process_time(), "sink": cpu_seconds(sink_pid)}
    cpu = {name: (after[name] - before[name]) * 1000 / len(prepared) for name in before}
    cpu["wall"] = seconds * 1000 / len(prepared)
    return len(prepared) / seconds, cpu


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process of this machine (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def database_backends() -> list[int]:
    """The PostgreSQL server processes serving this database (the drain's and its recorder's);
    none on SQLite (the database works inside this process: its CPU is the drain's)."""
    from django.db import connection  # noqa: PLC0415

    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        return [pid for (pid,) in cursor.fetchall()]


def one_round(n: int, profiler: cProfile.Profile | None, sink_pid: int) -> tuple[float, dict[str, float]]:
    from unittest import mock  # noqa: PLC0415

    from celery import current_app  # noqa: PLC0415

    from notifications.models import Message, Lane, Status  # noqa: PLC0415
    from notifications.core.outbox import drain  # noqa: PLC0415
    from notifications.core.outbox import wakeups
    from notifications.channels.email.sending import send_mail_template  # noqa: PLC0415
    from notifications.tests.support.files import make_pdf  # noqa: PLC0415
    from pipeline import INVOICE, sample_variables  # noqa: PLC0415

    Message.objects.all().delete()
    drain.forget_process_state()
    pdf, variables = make_pdf(), sample_variables(INVOICE)
    with mock.patch.object(wakeups, "wake_on_commit"):
        for i in range(n):
            send_mail_template(INVOICE, f"reseller{i}@example.com", {**variables, "invoice_number": f"INV-{i:06d}"},
                               attachments=[("invoice.pdf", pdf, "application/pdf")])
    current_app.conf.task_always_eager = False  # bounded drains, as in a worker; wake-ups are not published
    with mock.patch.object(wakeups, "wake"), mock.patch.object(wakeups, "taken"):
        drain.drain_lane(lane=Lane.URGENT)  # nothing due there: opens the recorder's connection
        backends = database_backends()
        before = {"drain": time.process_time(), "sink": cpu_seconds(sink_pid),
                  "postgres": sum(cpu_seconds(pid) for pid in backends)}
        started = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        while Message.objects.filter(status=Status.QUEUED).exists():
            drain.drain_lane(lane=Lane.DEFAULT)
        if profiler is not None:
            profiler.disable()
        seconds = time.perf_counter() - started
        after = {"drain": time.process_time(), "sink": cpu_seconds(sink_pid),
                 "postgres": sum(cpu_seconds(pid) for pid in backends)}
    cpu = {name: (after[name] - before[name]) * 1000 / n for name in before}
    cpu["wall"] = seconds * 1000 / n
    current_app.conf.task_always_eager = True
    sent = Message.objects.filter(status=Status.SENT).count()
    assert sent == n, f"{sent} of {n} sent"
    return n / seconds, cpu


if __name__ == "__main__":
    main()
