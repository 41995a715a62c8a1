"""Delivery through the real path, as a user runs it, beside django-post_office and the transport limit.

    .venv/bin/python bench/pipeline.py [--n 2000] [--rounds 3] [--bulk 10000] [--bulk-via batch|independent]
        [--urgent 20] [--quick] [--only independent,urgent,fanout,relays,esp] [--relay-delay 0.02]
        [--esp-delay 0.1] [--esp-n 300] [--pg postgres://postgres@127.0.0.1:5432]
        [--paths ours,post_office,django,transport]
    .venv/bin/python bench/pipeline.py --before <git ref> [--after <git ref>] [--n 2000] [--rounds 3]

Everything runs in processes of its own, started and stopped here (even on Ctrl-C): a
redis-server on a free port (the broker), an SMTP sink (`_sink.py`, aiosmtpd) that logs when
each message arrives by its X-Notification-Id, Celery workers
(`celery -A config worker -P prefork -c 1 -Q <lanes> -l WARNING`, the project's own Celery
configuration, `pipeline_settings` adding only a probe), and the bench's own PostgreSQL
databases (`notif_bench_<pid>*`, migrated here, dropped at the end). Messages are sent from this
process through the public entry points only (`send_mail_template`, `send_batch`), with the
project's SMTP backend pointed at the sink, so the script runs unchanged whatever the
delivery core looks like inside.

1. independent sends (`--n`, one `send_mail_template` call per recipient: the monthly invoice
   with its PDF) are written first, timed alone; then a worker is started and delivery is
   timed from its start (its `worker_ready`, or the first arrival if earlier) to the last
   arrival at the sink, each message checked to arrive exactly once. In the same round, on the
   same sink and PostgreSQL server: django-post_office 3.12 (`mail.send` per recipient, then
   `send_queued`, in its own virtualenv and database, see `_post_office.py`), Django's
   `send_messages` over one connection, and the transport limit (the same bytes, serialized
   beforehand, over one smtplib connection, no database). Rounds alternate; medians are printed.
2. per message delivered, in the delivery phase only (the sends' own commits are not counted):
   the bench database's commits (pg_stat_database.xact_commit, read-only transactions
   included) and rows written; the worker's SQL statements, its commits that wrote, the
   database connections it opened and the tasks it ran (the probe in `_probe.py`).
3. urgent latency under bulk load: `--bulk` bulk messages queued (send-batches of 500, or one
   send each with `--bulk-via independent`), the workers started, then `--urgent` urgent messages sent one every 50 ms; each one's time from
   its send call returning to its arrival: p50 / p99 / max, with one worker per lane and with a
   single worker serving all lanes.
4. one send to 50 recipients, and a send-batch of 500, to a warm idle worker: time from the
   call to the last arrival.

5. (`--only relays`) relays that take their time: against a sink answering DATA at once and
   one answering after `--relay-delay` (20 ms, a real relay's pace), side by side: the
   transport limit over 1 and 16 parallel smtplib connections of prebuilt bytes, post_office's
   `send_queued` at its default 5 threads and at 16, and ours at `-c 1` and `-c 4`; delivered/s.
6. (`--only esp`) an ESP: anymail's SendGrid backend pointed at a local SendGrid-shaped API
   (`_esp.py`) answering after `--esp-delay` (100 ms), ours at `-c 1` and `-c 4` beside 1 and 16
   prebuilt calls at once.

Settings other than the database, the broker and the mail server come from the caller's
environment, e.g. `OUTBOX_BATCH_SIZE=100 .venv/bin/python bench/pipeline.py --quick`.
Figures only: nothing here asserts on time. The machine's load moves every figure; compare
figures of the same run.

`--before <ref>` compares two versions of the code in one run: the ref is checked out in a
`git worktree` under /tmp (and so is `--after <ref>`; without it, "after" is this checkout,
uncommitted changes included), then section 1 runs for `ours` and the transport limit, one round
at a time in a process of its own per side (`BENCH_CODE_ROOT` points the bench's processes at
that side's code: its models, migrations, templates and worker), alternating the sides (before
first in odd rounds, after first in even ones); the medians of each side's rounds are printed
side by side with the difference in %. The bench itself (this script, the sink, the probe) is
this checkout's for both sides, so it only uses the public paths both have
(`notifications.services.sending`, `notifications.backends.SMTPBackend`).
"""
from __future__ import annotations

import argparse
import base64
import contextlib
import json
import math
import os
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

sys.path[:0] = [str(Path(__file__).resolve().parent),
                str(Path(os.environ.get("BENCH_CODE_ROOT") or Path(__file__).resolve().parent.parent).resolve())]

import _post_office
from _pipeline_support import (
    BENCH,
    PYTHON,
    ROOT,
    Postgres,
    Processes,
    Redis,
    Sink,
    Worker,
    ignore_signals,
    interrupt_on_signals,
    manage,
)

# Databases of this run only: two runs at once (several people share the server) never meet.
DB = f"notif_bench_{os.getpid()}"
TEMPLATE_DB, PO_DB = f"{DB}_template", f"{DB}_po"
ALL_LANES = "urgent,default,bulk"
INVOICE, URGENT, BULK = "billing_invoice_monthly", "incident_alert_critical", "cutover_reminder"
SECTIONS = ("independent", "urgent", "fanout", "relays", "esp")


def sample_variables(key: str) -> dict:
    return json.loads((ROOT / "fixtures" / "email_templates" / key / "template.json").read_text())["sample_variables"]


@dataclass
class Bench:
    """What every phase shares: the processes, the databases, the environment of the project's processes."""

    args: argparse.Namespace
    tmp: Path
    processes: Processes
    redis: Redis
    sink: Sink
    pg: Postgres
    env: dict = field(default_factory=dict)
    pdf: bytes = b""
    workload: Path | None = None
    report: dict = field(default_factory=dict)  # every figure, written with --json

    def fresh_database(self) -> None:
        """An empty queue: the bench database copied anew from the migrated template, an empty broker."""
        from django.db import connection

        connection.close()
        self.pg.create(DB, template=TEMPLATE_DB)
        self.redis.flush()

    def start_workers(self, lanes_by_name: dict[str, str], label: str, *, concurrency: int = 1,
                      env: dict | None = None) -> list[Worker]:
        workdir = self.tmp / label
        workdir.mkdir(exist_ok=True)
        return [Worker(self.processes, workdir, name=name, lanes=lanes, env={**self.env, **(env or {})},
                       loglevel=self.args.worker_loglevel, concurrency=concurrency)
                for name, lanes in lanes_by_name.items()]


# --- set-up ------------------------------------------------------------------------------------

def project_env(*, pg: Postgres, redis: Redis, sink: Sink) -> dict:
    """The environment of every process of ours: the project's settings, with DEBUG off and mail to the sink.

    Any other setting comes from the caller's environment (e.g. OUTBOX_BATCH_SIZE=100).
    """
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "pipeline_settings",
        "PYTHONPATH": os.pathsep.join([str(BENCH), str(ROOT)]),
        "ENVIRONMENT": "development", "DEBUG": "false", "LOG_LEVEL": "WARNING",
        "DATABASE_URL": pg.database_url(DB),
        "CELERY_BROKER_URL": redis.url,
        "EMAIL_BACKEND": "notifications.backends.SMTPBackend",
        "OUTBOX_ACTIVE": "true", "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(sink.port),
        "SMTP_USE_TLS": "false", "SMTP_USE_SSL": "false", "SMTP_USER": "", "SMTP_PASSWORD": "",
    }


def prepare(bench: Bench) -> None:
    """Migrate the template database, set this process up as the sender, render the shared workload."""
    started = time.perf_counter()
    bench.pg.create(TEMPLATE_DB)
    template_env = {**bench.env, "DATABASE_URL": bench.pg.database_url(TEMPLATE_DB)}
    manage("migrate", "--verbosity", "0", env=template_env)
    manage("load_default_templates", "--verbosity", "0", env=template_env)
    os.environ.update(bench.env)
    import django

    django.setup()
    from notifications.tests.support.files import make_pdf

    bench.pdf = make_pdf()
    bench.fresh_database()
    (message,) = send_invoices(bench, 1)[0]
    work = {"subject": message.subject, "html": message.html_content, "text": message.text_content,
            "from_email": message.from_email, "filename": "invoice.pdf", "content_type": "application/pdf",
            "pdf_b64": base64.b64encode(bench.pdf).decode()}
    bench.workload = bench.tmp / "workload.json"
    bench.workload.write_text(json.dumps(work))
    print(f"set-up in {time.perf_counter() - started:.1f} s: database {DB} on {bench.pg.url}, redis :{bench.redis.port}, "
          f"sink :{bench.sink.port}; workload {INVOICE!r}: subject {work['subject']!r}, html {len(work['html'])} chars, "
          f"text {len(work['text'])} chars, PDF {len(bench.pdf)} bytes", flush=True)


def send_invoices(bench: Bench, count: int, first: int = 0) -> list[list]:
    """`count` independent sends, one call per recipient, as an application sends its invoices."""
    from notifications.services.sending import send_mail_template

    variables = sample_variables(INVOICE)
    return [send_mail_template(INVOICE, f"reseller{i}@example.com", {**variables, "invoice_number": f"INV-{i:06d}"},
                               attachments=[("invoice.pdf", bench.pdf, "application/pdf")])
            for i in range(first, first + count)]


def django_emails(bench: Bench, count: int, tag: str) -> list:
    """The workload as Django emails, X-Notification-Id `<tag>-<i>`: what the references send."""
    from django.core.mail import EmailMultiAlternatives

    work = json.loads(bench.workload.read_text())
    emails = []
    for i in range(count):
        email = EmailMultiAlternatives(work["subject"], work["text"], work["from_email"], [f"reseller{i}@example.com"],
                                       headers={"X-Notification-Id": f"{tag}-{i}"})
        email.attach_alternative(work["html"], "text/html")
        email.attach(work["filename"], bench.pdf, work["content_type"])
        emails.append(email)
    return emails


# --- measuring ---------------------------------------------------------------------------------

@dataclass
class Delivery:
    """One path's figures for one round."""

    count: int
    seconds: float  # from the start of delivery to the last arrival
    queue_seconds: float | None = None
    missing: int = 0
    duplicates: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else float("nan")

    @property
    def complete(self) -> bool:
        return not self.missing and not self.duplicates


def arrival_check(arrivals: dict[str, list[float]]) -> tuple[int, int, float]:
    """(missing, duplicated, last arrival) of the messages a phase waited for."""
    missing = sum(1 for times in arrivals.values() if not times)
    duplicates = sum(len(times) - 1 for times in arrivals.values() if len(times) > 1)
    last = max((max(times) for times in arrivals.values() if times), default=float("nan"))
    return missing, duplicates, last


def ours(bench: Bench, count: int, label: str, *, sink: Sink | None = None, concurrency: int = 1,
         env: dict | None = None) -> Delivery:
    """N independent sends written with no worker running, then one worker started to deliver them.

    `sink`: deliver there (default: the bench's instant sink); `concurrency`: the worker's `-c`;
    `env`: settings of the sending side and the worker (e.g. an ESP backend)."""
    from django.db import connection
    from django.db.models import Count
    from django.test import override_settings

    from notifications import models

    Message = getattr(models, "Message", None) or models.EmailMessage  # noqa: N806 - before issue 20's rename

    sink = sink or bench.sink
    env = {**({"SMTP_PORT": str(sink.port)} if sink is not bench.sink else {}), **(env or {})}
    bench.fresh_database()
    started = time.perf_counter()
    with override_settings(**({"EMAIL_BACKEND": env["EMAIL_BACKEND"]} if "EMAIL_BACKEND" in env else {})):
        ids = [str(message.pk) for sent in send_invoices(bench, count) for message in sent]
    queue_seconds = time.perf_counter() - started
    connection.close()  # its statistics flush as its backend exits: the sends' commits stay out of the count
    before = bench.pg.counters(DB)
    (worker,) = bench.start_workers({"w": ALL_LANES}, label, concurrency=concurrency, env=env)
    try:
        ready = worker.wait_ready()
        arrivals = sink.wait_for(ids)
    finally:
        worker.stop()
    after = bench.pg.counters(DB)
    arrivals = {i: sink.poll().get(i, []) for i in ids}  # late duplicates too
    missing, duplicates, last = arrival_check(arrivals)
    first = min((min(times) for times in arrivals.values() if times), default=ready)
    start = min(ready, first)
    statuses = dict(Message.objects.values_list("status").annotate(n=Count("pk")).order_by())
    connection.close()
    return Delivery(count, last - start, queue_seconds, missing, duplicates, extra={
        "boot": ready - worker.spawned, "first": first - ready, "db": {k: after[k] - before[k] for k in after},
        "probe": worker.probe(), "statuses": statuses})


def post_office(bench: Bench, count: int, tag: str, *, sink: Sink | None = None, threads: int = 1) -> Delivery:
    from django.conf import settings

    bench.pg.create(PO_DB)
    db = settings.DATABASES["default"]
    database = {"ENGINE": "django.db.backends.postgresql", "NAME": PO_DB, "HOST": db["HOST"], "PORT": str(db["PORT"]),
                "USER": db["USER"], "PASSWORD": db.get("PASSWORD", "")}
    sink = sink or bench.sink
    report = _post_office.run(count=count, workload=bench.workload, tag=tag, smtp_port=sink.port,
                              database=database, admin_dsn=bench.pg.admin_dsn, threads=threads)
    arrivals = sink.wait_for([f"{tag}-{i}" for i in range(count)], stall=10)
    missing, duplicates, last = arrival_check(arrivals)
    bench.pg.drop(PO_DB)
    return Delivery(count, last - report["delivery_started"], report["queue_seconds"], missing, duplicates,
                    extra={"db": report["db"], "sent": report["sent"], "logs": report["logs"]})


def django_send_messages(bench: Bench, count: int, tag: str) -> Delivery:
    """Django's SMTP backend, one connection, the emails built beforehand (serialized as it sends)."""
    from django.core.mail import get_connection

    emails = django_emails(bench, count, tag)
    backend = get_connection("django.core.mail.backends.smtp.EmailBackend", host="127.0.0.1", port=bench.sink.port,
                             username="", password="", use_tls=False, use_ssl=False, timeout=30)
    started = time.time()
    with backend:
        backend.send_messages(emails)
    missing, duplicates, last = arrival_check(bench.sink.wait_for([f"{tag}-{i}" for i in range(count)], stall=10))
    return Delivery(count, last - started, None, missing, duplicates)


def transport_limit(bench: Bench, count: int, tag: str) -> Delivery:
    """The same bytes, serialized beforehand, over one smtplib connection: no sender beats this with this sink."""
    prepared = [(email.from_email, email.to, email.message().as_bytes(linesep="\r\n"))
                for email in django_emails(bench, count, tag)]
    started = time.time()
    with smtplib.SMTP("127.0.0.1", bench.sink.port) as client:
        for sender, recipients, data in prepared:
            client.sendmail(sender, recipients, data)
    missing, duplicates, last = arrival_check(bench.sink.wait_for([f"{tag}-{i}" for i in range(count)], stall=10))
    return Delivery(count, last - started, None, missing, duplicates, extra={"bytes": len(prepared[0][2])})


def transport_parallel(bench: Bench, count: int, tag: str, *, sink: Sink, connections: int) -> Delivery:
    """The same prebuilt bytes over `connections` smtplib connections at once, each from a thread of
    its own: the most a sender keeping that many messages in flight can deliver to this relay."""
    import threading

    prepared = [(email.from_email, email.to, email.message().as_bytes(linesep="\r\n"))
                for email in django_emails(bench, count, tag)]
    shares = [prepared[index::connections] for index in range(connections)]
    errors: list[BaseException] = []

    def send(share: list) -> None:
        try:
            with smtplib.SMTP("127.0.0.1", sink.port, timeout=60) as client:
                for sender, recipients, data in share:
                    client.sendmail(sender, recipients, data)
        except (OSError, smtplib.SMTPException) as exc:
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(share,)) for share in shares if share]
    started = time.time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    missing, duplicates, last = arrival_check(sink.wait_for([f"{tag}-{i}" for i in range(count)], stall=10))
    return Delivery(count, last - started, None, missing, duplicates, extra={"errors": [str(e) for e in errors]})


def sendgrid_payloads(bench: Bench, count: int, tag: str) -> list[bytes]:
    """The workload as SendGrid v3 mail/send bodies, serialized beforehand."""
    work = json.loads(bench.workload.read_text())
    return [json.dumps({
        "personalizations": [{"to": [{"email": f"reseller{i}@example.com"}]}],
        "from": {"email": work["from_email"]}, "subject": work["subject"],
        "content": [{"type": "text/plain", "value": work["text"]}, {"type": "text/html", "value": work["html"]}],
        "attachments": [{"content": work["pdf_b64"], "filename": work["filename"], "type": work["content_type"]}],
        "headers": {"X-Notification-Id": f"{tag}-{i}"},
    }).encode() for i in range(count)]


def esp_transport(bench: Bench, count: int, tag: str, *, esp: Sink, calls: int) -> Delivery:
    """Prebuilt SendGrid bodies posted by `calls` threads at once, each over a kept-alive
    connection of its own: the most a sender keeping that many calls in flight gets from the ESP."""
    import threading

    import requests

    payloads = sendgrid_payloads(bench, count, tag)
    shares = [payloads[index::calls] for index in range(calls)]
    url = f"http://127.0.0.1:{esp.port}/v3/mail/send"

    def post(share: list[bytes]) -> None:
        with requests.Session() as session:
            for body in share:
                session.post(url, data=body, headers={"Content-Type": "application/json",
                                                      "Authorization": "Bearer SG.bench"}, timeout=60)

    threads = [threading.Thread(target=post, args=(share,)) for share in shares if share]
    started = time.time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    missing, duplicates, last = arrival_check(esp.wait_for([f"{tag}-{i}" for i in range(count)], stall=10))
    return Delivery(count, last - started, None, missing, duplicates)


PATHS = {
    "ours": "ours: send_mail_template, 1 worker",
    "post_office": "post_office: mail.send, send_queued",
    "django": "Django send_messages, 1 connection",
    "transport": "transport limit: smtplib, prebuilt bytes",
}


def independent_sends(bench: Bench) -> None:
    n, rounds = bench.args.n, bench.args.rounds
    print(f"\n== 1. {n} independent sends, {rounds} round(s) ==", flush=True)
    results: dict[str, list[Delivery]] = {key: [] for key in PATHS}
    for index in range(bench.args.first_round, bench.args.first_round + rounds):
        for key, run in (("ours", ours), ("post_office", post_office), ("django", django_send_messages),
                         ("transport", transport_limit)):
            if key not in bench.args.paths:
                continue
            result = run(bench, n, f"{key}{index}")
            results[key].append(result)
            print(f"round {index} {PATHS[key]}: " + describe_round(result), flush=True)
    if set(bench.args.paths) == set(PATHS):  # the ratios need every path
        print_independent(results, n)
        print_per_message(results["ours"], results["post_office"], n)
    bench.report["independent"] = {key: [dict(asdict(run), rate=run.rate) for run in runs]
                                   for key, runs in results.items()}


def describe_round(result: Delivery) -> str:
    text = f"delivered {result.count} in {result.seconds:.2f} s = {result.rate:.0f} msg/s"
    if result.queue_seconds is not None:
        text = f"queued at {result.count / result.queue_seconds:.0f}/s; " + text
    if "boot" in result.extra:
        probe = result.extra["probe"]
        text += (f" (worker boot {result.extra['boot']:.1f} s, first arrival {result.extra['first']:+.2f} s after"
                 f" ready; per message: {result.extra['db']['commits'] / result.count:.2f} commits,"
                 f" {probe.get('statements', 0) / result.count:.2f} statements, {probe.get('tasks', 0) / result.count:.2f}"
                 " tasks)")
    if not result.complete:
        text += f"  INCOMPLETE: {result.missing} missing, {result.duplicates} duplicates (not counted)"
    return text


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def print_independent(results: dict[str, list[Delivery]], n: int) -> None:
    rates = {key: [r.rate for r in runs if r.complete] for key, runs in results.items()}
    queue = {key: [r.count / r.queue_seconds for r in runs if r.queue_seconds] for key, runs in results.items()}
    print(f"\n| N = {n}, medians | sends/s | delivered msg/s | each round | / transport limit |")
    print("|---|---|---|---|---|")
    limit = median(rates["transport"])
    for key, label in PATHS.items():
        sends = f"{median(queue[key]):.0f}" if queue[key] else "-"
        each = ", ".join(f"{rate:.0f}" for rate in rates[key]) or "none complete"
        print(f"| {label} | {sends} | {median(rates[key]):.0f} | {each} | {median(rates[key]) / limit:.2f} |")
    ours_rate = median(rates["ours"])

    def each_round(other: str) -> str:
        ratios = [mine.rate / theirs.rate for mine, theirs in zip(results["ours"], results[other], strict=True)
                  if mine.complete and theirs.complete]
        return ", ".join(f"{ratio:.2f}" for ratio in ratios) or "-"

    print(f"\nours / post_office = {ours_rate / median(rates['post_office']):.2f} of medians, rounds "
          f"{each_round('post_office')} (target >= 2); ours / transport limit = {ours_rate / limit:.2f} of medians, "
          f"rounds {each_round('transport')} (target >= 0.70)", flush=True)


def print_per_message(ours_runs: list[Delivery], po_runs: list[Delivery], n: int) -> None:
    """Section 2: what delivery costs the database, per message delivered (medians of the rounds)."""
    def per(runs: list[Delivery], pick) -> str:
        values = [pick(r) for r in runs]
        values = [v for v in values if v is not None]
        return f"{median(values) / n:.3f}" if values else "n/a"

    def probe(key: str):
        return lambda r: r.extra["probe"].get(key, 0) if r.extra.get("probe") else None

    def db(key: str):
        return lambda r: r.extra["db"][key]

    print(f"\n== 2. per message delivered (delivery phase only, N = {n}, medians) ==")
    print("| per message | ours (worker) | post_office (send_queued) |")
    print("|---|---|---|")
    print(f"| commits, pg_stat_database (read-only ones included) | {per(ours_runs, db('commits'))} | "
          f"{per(po_runs, db('commits'))} |")
    print(f"| commits that wrote (probe) | {per(ours_runs, probe('write commits'))} | n/a |")
    print(f"| database connections opened (probe) | {per(ours_runs, probe('connections'))} | n/a |")
    print(f"| Celery tasks run (probe) | {per(ours_runs, probe('tasks'))} | n/a |")
    print(f"| SQL statements (probe) | {per(ours_runs, probe('statements'))} | n/a |")
    kinds = sorted({k for r in ours_runs for k in r.extra.get("probe", {}) if k.startswith("statements ")})
    for kind in kinds:
        print(f"| - {kind.split(' ', 1)[1]} | {per(ours_runs, probe(kind))} | |")
    for key in ("inserted", "updated", "deleted"):
        print(f"| rows {key} | {per(ours_runs, db(key))} | {per(po_runs, db(key))} |")
    statuses = [r.extra["statuses"] for r in ours_runs]
    print(f"\nour statuses after each round: {statuses}", flush=True)


# --- relays that take their time, and an ESP (issue 21's "before" figures) ------------------------

def relay_paths(bench: Bench, sink: Sink, n: int) -> list[tuple[str, callable]]:
    """Every path of the relay section, against `sink`, in the order they run."""
    tag = f"{sink.name}-"
    return [
        ("transport limit, 1 connection", lambda: transport_parallel(bench, n, tag + "t1", sink=sink, connections=1)),
        ("transport limit, 16 connections", lambda: transport_parallel(bench, n, tag + "t16", sink=sink, connections=16)),
        ("post_office send_queued, 1 process, 5 threads (its default)",
         lambda: post_office(bench, n, tag + "po5", sink=sink, threads=5)),
        ("post_office send_queued, 1 process, 16 threads",
         lambda: post_office(bench, n, tag + "po16", sink=sink, threads=16)),
        ("ours, 1 worker -c 1", lambda: ours(bench, n, f"{sink.name}-c1", sink=sink, concurrency=1)),
        ("ours, 1 worker -c 4", lambda: ours(bench, n, f"{sink.name}-c4", sink=sink, concurrency=4)),
        ("ours, 1 worker -c 1, OUTBOX_CONCURRENCY=16",
         lambda: ours(bench, n, f"{sink.name}-n16", sink=sink, concurrency=1, env={"OUTBOX_CONCURRENCY": "16"})),
    ]


def relays(bench: Bench) -> None:
    """Independent sends against relays that answer DATA at once and after `--relay-delay`, side by side."""
    n = bench.args.n
    delays = [0.0, bench.args.relay_delay]
    print(f"\n== 5. {n} independent sends, relays answering DATA at once and after "
          f"{bench.args.relay_delay * 1000:.0f} ms ==", flush=True)
    table: list[tuple[str, str, Delivery]] = []
    for delay in delays:
        name = f"relay{int(delay * 1000)}ms"
        sink = Sink(bench.processes, bench.tmp, name=name, delay=delay)
        for label, run in relay_paths(bench, sink, n):
            result = run()
            table.append((name, label, result))
            print(f"{name} {label}: " + describe_round(result), flush=True)
    print_relay_table(bench, table, f"{n} independent sends")


def esp(bench: Bench) -> None:
    """Independent sends through anymail's SendGrid backend to an API answering after `--esp-delay`."""
    n = bench.args.esp_n
    api = Sink(bench.processes, bench.tmp, name=f"esp{int(bench.args.esp_delay * 1000)}ms", delay=bench.args.esp_delay,
               esp=True)
    env = {"EMAIL_BACKEND": "anymail.backends.sendgrid.EmailBackend",
           "BENCH_SENDGRID_API_URL": f"http://127.0.0.1:{api.port}/v3/"}
    print(f"\n== 6. {n} independent sends through anymail's SendGrid backend, the API answering after "
          f"{bench.args.esp_delay * 1000:.0f} ms ==", flush=True)
    table = []
    for label, run in (
        ("ESP limit, 1 call at a time", lambda: esp_transport(bench, n, "espt1", esp=api, calls=1)),
        ("ESP limit, 16 calls at once", lambda: esp_transport(bench, n, "espt16", esp=api, calls=16)),
        ("ours, 1 worker -c 1", lambda: ours(bench, n, "esp-c1", sink=api, concurrency=1, env=env)),
        ("ours, 1 worker -c 4", lambda: ours(bench, n, "esp-c4", sink=api, concurrency=4, env=env)),
    ):
        result = run()
        table.append((api.name, label, result))
        print(f"{api.name} {label}: " + describe_round(result), flush=True)
    print_relay_table(bench, table, f"{n} independent sends")


def print_relay_table(bench: Bench, table: list[tuple[str, str, Delivery]], what: str) -> None:
    print(f"\n| {what} | relay | delivered/s | / 16-connection limit | / post_office 5 threads |")
    print("|---|---|---|---|---|")
    reference = {}
    for name, label, result in table:
        if "16" in label and "limit" in label:
            reference[(name, "limit")] = result.rate if result.complete else float("nan")
        if "5 threads" in label:
            reference[(name, "po")] = result.rate if result.complete else float("nan")
    for name, label, result in table:
        rate = f"{result.rate:.0f}" if result.complete else f"INCOMPLETE ({result.missing} missing, {result.duplicates} dup)"
        limit, po = reference.get((name, "limit")), reference.get((name, "po"))
        print(f"| {label} | {name} | {rate} | {_ratio(result, limit)} | {_ratio(result, po)} |", flush=True)
        bench.report.setdefault("relays", []).append({"relay": name, "path": label, **asdict(result), "rate": result.rate})


def _ratio(result: Delivery, reference: float | None) -> str:
    return f"{result.rate / reference:.2f}" if reference and result.complete else "-"


# --- urgent latency under bulk load ---------------------------------------------------------------

def queue_bulk(count: int, via: str) -> tuple[list[str], float]:
    """`count` bulk messages: their ids, and the seconds it took to queue them.

    `via` "batch": send-batches of SEND_MAX_BATCH_ITEMS, as a newsletter is sent (and quick
    to set up); "independent": one send_mail_template call each.
    """
    from django.conf import settings

    from notifications.services.sending import send_batch, send_mail_template

    variables = sample_variables(BULK)
    started = time.perf_counter()
    size, ids = settings.SEND_MAX_BATCH_ITEMS, []
    if via == "independent":
        ids = [str(m.pk) for i in range(count) for m in send_mail_template(BULK, f"bulk{i}@example.com", variables)]
    else:
        for start in range(0, count, size):
            items = [{"to": f"bulk{i}@example.com", "variables": variables}
                     for i in range(start, min(count, start + size))]
            ids += [str(m.pk) for result in send_batch(BULK, items) for m in result.messages]
    return ids, time.perf_counter() - started


def percentile(values: list[float], share: float) -> float:
    """Nearest rank: with 20 samples, p99 is the worst one."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)] if ordered else float("nan")


@dataclass
class UrgentRun:
    label: str
    latencies: list[float]  # seconds, from the send call returning to the arrival
    missing: int
    duplicates: int
    bulk_before: int  # bulk messages delivered by the last urgent arrival


def urgent_run(bench: Bench, label: str, lanes_by_name: dict[str, str]) -> UrgentRun:
    """Bulk queued, the workers started, then the urgent sends one every 50 ms."""
    from django.db import connection

    from notifications.services.sending import send_mail_template

    bench.fresh_database()
    bulk_ids, queue_seconds = queue_bulk(bench.args.bulk, bench.args.bulk_via)
    connection.close()
    variables = sample_variables(URGENT)
    workers = bench.start_workers(lanes_by_name, label.replace(" ", "-").replace(",", ""))
    try:
        for worker in workers:
            worker.wait_ready()
        sent: dict[str, float] = {}
        tick = time.monotonic()
        for i in range(bench.args.urgent):
            (message,) = send_mail_template(URGENT, f"oncall{i}@example.com", variables, include_extra_recipients=False)
            sent[str(message.pk)] = time.time()
            tick += 0.05
            time.sleep(max(0.0, tick - time.monotonic()))
        arrivals = bench.sink.wait_for(list(sent))
    finally:
        for worker in workers:
            worker.stop()
    missing, duplicates, last = arrival_check(arrivals)
    logged = bench.sink.poll()
    run = UrgentRun(label, [min(times) - sent[key] for key, times in arrivals.items() if times], missing, duplicates,
                    sum(1 for key in bulk_ids if logged.get(key) and min(logged[key]) <= last))
    print(f"{label}: {len(bulk_ids)} bulk queued at {len(bulk_ids) / queue_seconds:.0f}/s; urgent latency p50 "
          f"{percentile(run.latencies, .5) * 1000:.0f} ms, max {percentile(run.latencies, 1) * 1000:.0f} ms; "
          f"{run.bulk_before} bulk delivered by the last urgent arrival"
          + (f"; {missing} urgent missing, {duplicates} duplicates" if missing or duplicates else ""), flush=True)
    return run


def urgent_latency(bench: Bench) -> None:
    bulk, k = bench.args.bulk, bench.args.urgent
    print(f"\n== 3. {k} urgent sends, one every 50 ms, {bulk} bulk queued ({bench.args.bulk_via} sends) ==", flush=True)
    runs = [urgent_run(bench, "one worker per lane", {"urgent": "urgent", "default": "default", "bulk": "bulk"}),
            urgent_run(bench, "one worker, all lanes", {"all": ALL_LANES})]
    print(f"\n| {k} urgent, {bulk} bulk queued | p50 | p99 | max | bulk delivered by then | urgent missing / duplicates |")
    print("|---|---|---|---|---|---|")
    for run in runs:
        p50, p99, worst = (percentile(run.latencies, share) * 1000 for share in (.5, .99, 1))
        print(f"| {run.label} | {p50:.0f} ms | {p99:.0f} ms | {worst:.0f} ms | {run.bulk_before} of {bulk} | "
              f"{run.missing} / {run.duplicates} |")
    print("targets: p99 < 250 ms with one worker per lane, < 1 s with one worker serving all lanes", flush=True)
    bench.report["urgent"] = [asdict(run) for run in runs]


# --- one send to many ------------------------------------------------------------------------------

def fanout(bench: Bench) -> None:
    from notifications.services.sending import send_batch, send_mail_template

    print("\n== 4. one send to 50 recipients, one send-batch of 500, to a warm idle worker ==", flush=True)
    bench.fresh_database()
    (worker,) = bench.start_workers({"w": ALL_LANES}, "fanout")
    variables = sample_variables(INVOICE)
    attachments = [("invoice.pdf", bench.pdf, "application/pdf")]
    rows = []
    try:
        worker.wait_ready()
        warm = [str(m.pk) for sent in send_invoices(bench, 1) for m in sent]  # opens its SMTP and database connections
        bench.sink.wait_for(warm)
        time.sleep(0.5)
        cases = {
            "send_mail_template to 50": lambda: [
                send_mail_template(INVOICE, [f"team{i}@example.com" for i in range(50)], variables,
                                   attachments=attachments)],
            "send_batch of 500": lambda: [result.messages for result in send_batch(
                INVOICE, [{"to": f"merge{i}@example.com", "variables": {**variables, "invoice_number": f"M-{i}"}}
                          for i in range(500)], attachments=attachments)],
        }
        for label, call in cases.items():
            started = time.time()
            ids = [str(m.pk) for messages in call() for m in messages]
            returned = time.time() - started
            missing, duplicates, last = arrival_check(bench.sink.wait_for(ids))
            rows.append((label, len(ids), returned, last - started, missing, duplicates))
            bench.report.setdefault("fanout", []).append(
                {"case": label, "messages": len(ids), "call_seconds": returned, "last_arrival_seconds": last - started,
                 "missing": missing, "duplicates": duplicates})
            time.sleep(0.5)
    finally:
        worker.stop()
    print("| case | messages | call returned | last arrival | msg/s | missing / duplicates |")
    print("|---|---|---|---|---|---|")
    for label, count, returned, total, missing, duplicates in rows:
        print(f"| {label} | {count} | {returned * 1000:.0f} ms | {total:.2f} s | {count / total:.0f} | "
              f"{missing} / {duplicates} |", flush=True)


# --- main ------------------------------------------------------------------------------------------

def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, help="independent sends per round (2000; 300 with --quick)")
    parser.add_argument("--rounds", type=int, help="rounds of section 1, medians printed (3; 1 with --quick)")
    parser.add_argument("--bulk", type=int, help="bulk messages queued in section 3 (10000; 2000 with --quick)")
    parser.add_argument("--bulk-via", choices=("batch", "independent"), default="batch",
                        help="queue section 3's bulk as send-batches of 500 (default) or one send each")
    parser.add_argument("--urgent", type=int, help="urgent sends in section 3 (20; 10 with --quick)")
    parser.add_argument("--relay-delay", type=float, default=0.02,
                        help="section 5 (relays): the slow relay answers DATA after this many seconds (0.02)")
    parser.add_argument("--esp-delay", type=float, default=0.1,
                        help="section 6 (esp): the SendGrid-shaped API answers after this many seconds (0.1)")
    parser.add_argument("--esp-n", type=int, default=300, help="section 6 (esp): independent sends (300)")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections to run, of {', '.join(SECTIONS)} (section 2 comes with 1)")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="keep the workers' logs and the sink's arrival log in DIR (default: a temporary directory)")
    parser.add_argument("--worker-loglevel", default="WARNING", help="the workers' -l (INFO shows each task)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every figure to this JSON file")
    parser.add_argument("--paths", default=",".join(PATHS),
                        help=f"section 1's paths, of {', '.join(PATHS)} (the summary tables need all of them)")
    parser.add_argument("--before", metavar="REF",
                        help="compare: run section 1 (ours and the transport limit) on this git ref's code and on"
                             " --after's, alternated, --rounds rounds each")
    parser.add_argument("--first-round", type=int, default=1, help=argparse.SUPPRESS)  # a side's round, when compared
    parser.add_argument("--after", metavar="REF",
                        help="with --before: the other side's git ref (default: this checkout as it is)")
    parser.add_argument("--pg", default=os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432"),
                        help="the PostgreSQL server (the bench creates and drops its notif_bench_<pid>* databases)")
    args = parser.parse_args()
    defaults = {"n": (2000, 300), "rounds": (3, 1), "bulk": (10000, 2000), "urgent": (20, 10)}
    for name, (full, quick) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    args.paths = [s.strip() for s in args.paths.split(",") if s.strip()]
    if set(args.paths) - set(PATHS):
        parser.error(f"--paths: unknown path(s) {', '.join(sorted(set(args.paths) - set(PATHS)))}")
    if args.after and not args.before:
        parser.error("--after needs --before")
    unknown = set(args.only) - set(SECTIONS)
    if unknown:
        parser.error(f"--only: unknown section(s) {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}")
    if urlsplit(args.pg).scheme not in ("postgres", "postgresql"):
        parser.error("--pg must be a postgres:// URL without a database name")
    return args


# --- before / after ----------------------------------------------------------------------------------

@dataclass
class Side:
    """One version of the code: a label, where its checkout is, the commit it is at."""

    label: str
    root: Path
    commit: str
    runs: list[dict] = field(default_factory=list)  # each round's section 1 report (ours, transport)


def git(*args: str, cwd: Path = BENCH.parent) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def checkout(ref: str, label: str, tmp: Path) -> Side:
    """A detached `git worktree` of `ref` in the run's temporary directory (removed by `compare`)."""
    commit = git("rev-parse", "--verify", f"{ref}^{{commit}}")
    root = tmp / f"code-{label}"
    git("worktree", "add", "--detach", str(root), commit)
    return Side(f"{label} ({ref})" if commit.startswith(ref) else f"{label} ({ref} = {commit[:7]})", root, commit)


def run_side(side: Side, args: argparse.Namespace, index: int, tmp: Path) -> None:
    """One round of section 1 on `side`'s code, in a process of its own (Django is set up once per process)."""
    report = tmp / f"round{index}-{side.root.name}.json"
    command = [str(PYTHON), str(Path(__file__).resolve()), "--only", "independent", "--paths", "ours,transport",
               "--rounds", "1", "--first-round", str(index), "--n", str(args.n), "--pg", args.pg, "--json", str(report),
               "--worker-loglevel", args.worker_loglevel]
    print(f"\n-- round {index}, {side.label} --", flush=True)
    # In the side's folder: Celery's app puts the working directory on sys.path when Django
    # starts, and the side's `notifications` must be the one imported.
    done = subprocess.run(command, env={**os.environ, "BENCH_CODE_ROOT": str(side.root)}, cwd=side.root, check=False)
    if done.returncode:
        raise RuntimeError(f"round {index} of {side.label} failed (status {done.returncode})")
    side.runs.append(json.loads(report.read_text())["independent"])


def side_figures(side: Side) -> dict[str, list[float]]:
    """Each round's figures of one side, complete rounds only (a message lost or doubled is no rate)."""
    figures: dict[str, list[float]] = {key: [] for key in COMPARED}
    for run in side.runs:
        (mine,), (limit,) = run["ours"], run["transport"]
        if not (mine["missing"] or mine["duplicates"]):
            n = mine["count"]
            figures["writes"].append(n / mine["queue_seconds"])
            figures["delivery"].append(mine["rate"])
            figures["commits"].append(mine["extra"]["db"]["commits"] / n)
            figures["rows"].append(sum(mine["extra"]["db"][k] for k in ("inserted", "updated", "deleted")) / n)
            figures["statements"].append(mine["extra"]["probe"].get("statements", 0) / n)
        if not (limit["missing"] or limit["duplicates"]):
            figures["transport"].append(limit["rate"])
    return figures


COMPARED = {
    "writes": ("writes: sends/s, send_mail_template, no worker", "{:.0f}"),
    "delivery": ("delivery: msg/s, 1 worker", "{:.0f}"),
    "commits": ("worker's database commits per message", "{:.3f}"),
    "rows": ("rows written per message delivered", "{:.2f}"),
    "statements": ("worker's SQL statements per message", "{:.2f}"),
    "transport": ("transport limit msg/s (the machine's load, not the code)", "{:.0f}"),
}


def print_comparison(before: Side, after: Side, args: argparse.Namespace) -> None:
    figures = {side.label: side_figures(side) for side in (before, after)}
    print(f"\n== before / after: section 1, N = {args.n}, medians of {args.rounds} round(s), sides alternated ==")
    print(f"| median (each round) | {before.label} | {after.label} | after vs before |")
    print("|---|---|---|---|")
    for key, (label, number) in COMPARED.items():
        old, new = figures[before.label][key], figures[after.label][key]

        def cell(values: list[float], number: str = number) -> str:
            if not values:
                return "none complete"
            return f"{number.format(median(values))} ({', '.join(number.format(v) for v in values)})"

        change = f"{(median(new) / median(old) - 1) * 100:+.1f} %" if old and new and median(old) else "-"
        print(f"| {label} | {cell(old)} | {cell(new)} | {change} |")
    print("Rounds whose messages were not each delivered exactly once are left out of the medians.", flush=True)


def compare(args: argparse.Namespace) -> None:
    """`--before REF [--after REF]`: section 1 on both versions of the code, alternated, in one run."""
    with tempfile.TemporaryDirectory(prefix="notif-bench-compare-") as name:
        tmp = Path(name)
        sides: list[Side] = []
        try:
            sides.append(checkout(args.before, "before", tmp))
            if args.after:
                sides.append(checkout(args.after, "after", tmp))
            else:
                dirty = " + uncommitted changes" if git("status", "--porcelain", "--untracked-files=no") else ""
                head = git("rev-parse", "HEAD")
                sides.append(Side(f"after (this checkout = {head[:7]}{dirty})", BENCH.parent, head))
            before, after = sides
            print(f"before: {before.root} at {before.commit}\nafter: {after.root} at {after.commit}", flush=True)
            for index in range(1, args.rounds + 1):
                for side in ((before, after) if index % 2 else (after, before)):
                    run_side(side, args, index, tmp)
            print_comparison(before, after, args)
        except KeyboardInterrupt:
            print("\ninterrupted", file=sys.stderr)
            raise SystemExit(130) from None
        finally:
            ignore_signals()
            for side in sides:
                if side.root.is_relative_to(tmp):
                    git("worktree", "remove", "--force", str(side.root))


def main() -> None:
    args = parse_args()
    interrupt_on_signals()
    if args.before:
        compare(args)
        return
    processes = Processes()
    pg = Postgres(args.pg)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    with (contextlib.nullcontext(str(args.keep)) if args.keep
          else tempfile.TemporaryDirectory(prefix="notif-bench-pipeline-")) as tmp:
        try:
            if ("independent" in args.only and "post_office" in args.paths) or "relays" in args.only:
                print(f"post_office venv {_post_office.VENV}: {_post_office.ensure_venv()}", flush=True)
            redis = Redis(processes, Path(tmp))
            sink = Sink(processes, Path(tmp))
            bench = Bench(args, Path(tmp), processes, redis, sink, pg)
            bench.env = project_env(pg=pg, redis=redis, sink=sink)
            prepare(bench)
            for section, run in (("independent", independent_sends), ("urgent", urgent_latency), ("fanout", fanout),
                                 ("relays", relays), ("esp", esp)):
                if section in args.only:
                    run(bench)
            if args.json:
                bench.report["args"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
                args.json.write_text(json.dumps(bench.report, indent=1, default=str))
                print(f"\nfigures written to {args.json}")
        except KeyboardInterrupt:
            print("\ninterrupted: stopping what was started", file=sys.stderr)
            raise SystemExit(130) from None
        finally:
            ignore_signals()
            processes.stop_all()
            if "django.db" in sys.modules:  # set up: its connection must go before the databases
                from django.db import connection

                connection.close()
            for name in (DB, PO_DB, TEMPLATE_DB):
                pg.drop(name)


if __name__ == "__main__":
    main()
