"""Baseline for the delivery goal: django-post_office's delivery rate next to ours, measured the same way.

    python3 bench/compare_post_office.py [N] [--runs 3] [--postgres] [--profile]

N (default 500) queued messages are delivered in ONE process over one kept-open SMTP connection to
an aiosmtpd Sink running in another process; only the delivery step is timed. Our figures come from
`bench/deliver.py N` (a task per message, as messages sent one call each are delivered) and
`bench/deliver.py N --batch` (batches of EMAIL_DELIVERY_BATCH_SIZE, as the messages of one multi-recipient
or send-batch call are delivered), run unchanged with the project's `.venv`; `bench/deliver.py N --floor`
sends the same bytes with bare smtplib and no database, the ceiling this server allows any client. post_office's comes from an inner
script run in a throwaway virtualenv outside the repo (created on first use, then reused; post_office
never enters requirements.txt or `.venv`) with Django, django-post_office and aiosmtpd pinned below.

The same workload on both sides: the `billing_invoice_monthly` template is rendered once by OUR
project (send_mail_template with its sample variables, into a throwaway database) and that exact
subject / HTML / text, sender and `make_pdf()` attachment are handed to post_office, one recipient
and one PDF per message, plus an X-Notification-Id header as ours carries. post_office queues them
with `mail.send(..., priority='medium')` and delivers them with `mail.send_queued(processes=1)`,
THREADS_PER_PROCESS=1, BATCH_SIZE=N (one batch), no Celery, Django's SMTP backend to the sink, its
default LOG_LEVEL (2: a Log row per message), SQLite with the same WAL/synchronous=NORMAL pragmas our
settings use. A run counts only if all N end up sent (post_office's Email.status, our status column).

Each side runs --runs times (alternating, each on a fresh database); each run is printed, then the
best (min time), median and worst rates and the ratio ours/post_office of medians and of best runs.
--postgres repeats it all on PostgreSQL (127.0.0.1, user postgres, databases created and dropped
here). --profile adds one uncounted post_office run under cProfile and prints the top 10 cumulative
entries of its send step, for the calling thread and for the ThreadPool thread that talks SMTP
(plus that thread's top 10 by own time).
Figures only: nothing here asserts on time.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUR_PYTHON = ROOT / ".venv" / "bin" / "python"
VENV = Path(os.environ.get("POST_OFFICE_BENCH_VENV", "/tmp/notif-bench-post-office/venv"))
# The newest django-post_office declaring Django 5.2 support when this was written (3.12.0 lists 4.2-6.1).
PINS = {"Django": "5.2.19", "django-post_office": "3.12.0", "aiosmtpd": "1.4.6"}
PG_PIN = {"psycopg[binary]": "3.3.9"}  # the project's own psycopg version, only for --postgres
PG = {"HOST": "127.0.0.1", "PORT": "5432", "USER": "postgres"}
MODES = {"one task each": [], "batched": ["--batch"], "smtplib floor": ["--floor"]}

RENDER = """
import base64, json, sys
sys.path.insert(0, {bench!r})
from _setup import setup
setup()
from django.db import transaction
from notifications.models import EmailMessage, EmailTemplate
from notifications.services.delivery import build_email
from notifications.services.sending import send_mail_template
from notifications.services.sealing import content_to_send
from notifications.tests.support.files import make_pdf

pdf = make_pdf()
template = EmailTemplate.objects.get(key="billing_invoice_monthly")
with transaction.atomic():  # queue one exactly as bench/deliver.py does, without delivering it
    (message,) = send_mail_template("billing_invoice_monthly", "reseller0@example.com", template.sample_variables,
                                    attachments=[("invoice.pdf", pdf, "application/pdf")])
    transaction.get_connection().run_on_commit = []
message = EmailMessage.objects.get(pk=message.pk)
subject, html, text = content_to_send(message)
json.dump({{"subject": subject, "html": html, "text": text, "from_email": message.from_email,
           "filename": "invoice.pdf", "content_type": "application/pdf",
           "pdf_b64": base64.b64encode(pdf).decode(),
           "our_mime_bytes": len(build_email(message).message().as_bytes())}}, open(sys.argv[1], "w"))
"""

SETTINGS = """
import os
SECRET_KEY = "bench-only"
USE_TZ = True
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "post_office"]
TEMPLATES = [{{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}}]
DATABASES = {{"default": {database!r}}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
MEDIA_ROOT = {media!r}  # post_office stores each attachment as a file
DEFAULT_FROM_EMAIL = {from_email!r}
EMAIL_HOST = "127.0.0.1"
EMAIL_PORT = int(os.environ["PO_BENCH_SMTP_PORT"])
EMAIL_USE_TLS = EMAIL_USE_SSL = False
EMAIL_HOST_USER = EMAIL_HOST_PASSWORD = ""
POST_OFFICE = {{
    "BACKENDS": {{"default": "django.core.mail.backends.smtp.EmailBackend"}},
    "DEFAULT_PRIORITY": "medium",
    "THREADS_PER_PROCESS": 1,
    "BATCH_SIZE": {count},
    "CELERY_ENABLED": False,
}}
LOGGING = {{  # as our bench runs with LOG_LEVEL=WARNING
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {{"console": {{"class": "logging.StreamHandler"}}}},
    "loggers": {{"post_office": {{"handlers": ["console"], "level": "WARNING"}}}},
}}
"""

INNER = r'''
"""post_office side, run in the throwaway venv: queue N, time send_queued(processes=1), check all sent."""
import base64, json, os, socket, subprocess, sys, time, uuid

count, workload_path, profile = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "1"
with socket.socket() as sock:
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
os.environ["PO_BENCH_SMTP_PORT"] = str(port)
import django
django.setup()
from django.core.management import call_command
from django.core.files.base import ContentFile
from django.db import connection, transaction
from post_office import mail
from post_office.models import STATUS, Email, Log

call_command("migrate", verbosity=0)
server = subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}", "-c",
                           "aiosmtpd.handlers.Sink"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    work = json.load(open(workload_path))
    pdf = base64.b64decode(work["pdf_b64"])
    with transaction.atomic():  # queueing is not timed
        for i in range(count):
            mail.send([f"reseller{i}@example.com"], work["from_email"], subject=work["subject"], message=work["text"],
                      html_message=work["html"], priority="medium", headers={"X-Notification-Id": str(uuid.uuid4())},
                      attachments={work["filename"]: {"file": ContentFile(pdf), "mimetype": work["content_type"]}})
    # mail.send runs the strings through Django's template engine: make sure nothing was changed.
    first = Email.objects.order_by("id").first()
    assert (first.subject, first.html_message, first.message) == (work["subject"], work["html"], work["text"])
    mime_bytes = len(first.prepare_email_message().message().as_bytes())
    queued = Email.objects.filter(status=STATUS.queued).count()

    def run():
        started = time.perf_counter()
        while mail.get_queued().exists():  # BATCH_SIZE=N: a single batch
            mail.send_queued(processes=1)
        return time.perf_counter() - started

    if profile:  # send_queued prepares in this thread, then sends from a ThreadPool thread: profile both
        import cProfile, io, pstats
        from multiprocessing.pool import ThreadPool

        main_profiler, sender_profiler = cProfile.Profile(), cProfile.Profile()

        class ProfiledThreadPool(ThreadPool):
            def __init__(self, processes=None):
                super().__init__(processes, initializer=sender_profiler.enable)

        mail.ThreadPool = ProfiledThreadPool
        elapsed = main_profiler.runcall(run)
        out = io.StringIO()
        for name, profiler in (("calling thread", main_profiler), ("sending thread", sender_profiler)):
            out.write(f"--- {name}, top 10 cumulative ---\n")
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(10)
        out.write("--- sending thread, top 10 by own time ---\n")
        pstats.Stats(sender_profiler, stream=out).sort_stats("tottime").print_stats(10)
        profile_text = out.getvalue()
    else:
        elapsed, profile_text = run(), ""
finally:
    server.terminate()
    server.wait()
print(json.dumps({"count": count, "queued": queued, "elapsed": elapsed,
                  "sent": Email.objects.filter(status=STATUS.sent).count(),
                  "logs": Log.objects.filter(status=STATUS.sent).count(), "mime_bytes": mime_bytes,
                  "database": connection.vendor, "profile": profile_text}))
'''


def run(cmd, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, text=True, capture_output=True, timeout=1200, **kwargs)


def ensure_venv(postgres: bool) -> str:
    """Create (or reuse) the throwaway venv with the pinned packages; returns their versions."""
    python = VENV / "bin" / "python"
    wanted = dict(PINS, **({"psycopg": PG_PIN["psycopg[binary]"]} if postgres else {}))
    check = ("import importlib.metadata as m, json, sys; "
             "print(json.dumps({n: (m.version(n) if n else '') for n in sys.argv[1:]}))")

    def installed() -> dict:
        try:
            return json.loads(run([str(python), "-c", check, *wanted]).stdout)
        except (subprocess.CalledProcessError, FileNotFoundError):
            return {}

    if installed() != wanted:
        if not python.exists():
            print(f"creating {VENV} ...", flush=True)
            run([sys.executable, "-m", "venv", str(VENV)])
        pins = dict(PINS, **(PG_PIN if postgres else {}))
        print("installing " + " ".join(f"{n}=={v}" for n, v in pins.items()) + " ...", flush=True)
        run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
             *(f"{n}=={v}" for n, v in pins.items())])
        if installed() != wanted:
            sys.exit(f"{VENV} does not hold {wanted}: {installed()}")
    return ", ".join(f"{n} {v}" for n, v in installed().items())


def render_workload(path: Path) -> dict:
    """Render the message once with OUR project (throwaway SQLite) and write what both sides send."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    run([str(OUR_PYTHON), "-c", RENDER.format(bench=str(ROOT / "bench")), str(path)], cwd=ROOT, env=env)
    return json.loads(path.read_text())


def psql(sql: str) -> None:
    run(["psql", "-h", PG["HOST"], "-U", PG["USER"], "-q", "-c", sql])


def post_office_run(count: int, workload: Path, postgres: bool, profile: bool) -> dict:
    work = json.loads(workload.read_text())
    tmp = Path(tempfile.mkdtemp(prefix="notif-bench-po-"))
    dbname = f"notif_bench_po_{os.getpid()}"
    if postgres:
        psql(f"DROP DATABASE IF EXISTS {dbname}")
        psql(f"CREATE DATABASE {dbname}")
        database = dict(ENGINE="django.db.backends.postgresql", NAME=dbname, **PG)
    else:
        database = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp / "po.sqlite3"),
                    "OPTIONS": {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}}
    (tmp / "po_bench_settings.py").write_text(SETTINGS.format(
        database=database, media=str(tmp / "media"), from_email=work["from_email"], count=count))
    (tmp / "po_deliver.py").write_text(INNER)
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="po_bench_settings", PYTHONPATH=str(tmp))
    try:
        done = run([str(VENV / "bin" / "python"), str(tmp / "po_deliver.py"), str(count), str(workload),
                    "1" if profile else "0"], cwd=tmp, env=env)
    except subprocess.CalledProcessError as exc:
        sys.exit(f"post_office run failed:\n{exc.stdout}\n{exc.stderr}")
    finally:
        if postgres:
            psql(f"DROP DATABASE IF EXISTS {dbname}")
        shutil.rmtree(tmp, ignore_errors=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def our_run(count: int, postgres: bool, mode: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    dbname = f"notif_bench_ours_{os.getpid()}"
    if postgres:
        psql(f"DROP DATABASE IF EXISTS {dbname}")
        psql(f"CREATE DATABASE {dbname}")
        env["DATABASE_URL"] = f"postgres://{PG['USER']}@{PG['HOST']}:{PG['PORT']}/{dbname}"
    try:
        out = run([str(OUR_PYTHON), "bench/deliver.py", str(count), *MODES[mode]], cwd=ROOT, env=env).stdout
    except subprocess.CalledProcessError as exc:
        sys.exit(f"bench/deliver.py failed:\n{exc.stdout}\n{exc.stderr}")
    finally:
        if postgres:
            psql(f"DROP DATABASE IF EXISTS {dbname}")
    found = re.search(r"deliver on (\w+): (\d+) invoices with a PDF in ([\d.]+)s: \d+ msg/s; (\d+) sent", out)
    if not found:
        sys.exit(f"unexpected output from bench/deliver.py:\n{out}")
    return {"database": found[1], "count": int(found[2]), "elapsed": float(found[3]), "sent": int(found[4])}


def summary(rates: list[float]) -> str:
    """Best run (min time), median and worst run (max time), as rates."""
    return f"best {max(rates):.0f} / median {statistics.median(rates):.0f} / worst {min(rates):.0f} msg/s"


def compare(count: int, runs: int, postgres: bool, profile: bool, workload: Path) -> None:
    label = "postgresql" if postgres else "sqlite"
    print(f"\n== {label}: {count} messages, {runs} runs each ==", flush=True)
    theirs: list[float] = []
    ours: dict[str, list[float]] = {mode: [] for mode in MODES}
    for index in range(1, runs + 1):
        po = post_office_run(count, workload, postgres, False)
        complete = po["sent"] == po["queued"] == count
        po_rate = count / po["elapsed"]
        print(f"run {index} post_office: {count} in {po['elapsed']:.2f} s = {po_rate:.0f} msg/s "
              f"({po['sent']}/{count} sent, {po['logs']} sent logs, MIME {po['mime_bytes']} bytes, on {po['database']})"
              + ("" if complete else "  INCOMPLETE: not counted"), flush=True)
        if complete:
            theirs.append(po_rate)
        for mode, rates in ours.items():
            mine = our_run(count, postgres, mode)
            my_rate = count / mine["elapsed"]
            print(f"run {index} ours, {mode}: {count} in {mine['elapsed']:.2f} s = {my_rate:.0f} msg/s "
                  f"({mine['sent']}/{count} sent, on {mine['database']})"
                  + ("" if mine["sent"] == count else "  INCOMPLETE: not counted"), flush=True)
            if mine["sent"] == count:
                rates.append(my_rate)
    if profile:  # an extra run, not counted: the profiler slows it down
        po = post_office_run(count, workload, postgres, True)
        print(f"profiled post_office run (not counted): {count} in {po['elapsed']:.2f} s, {po['sent']} sent")
        print(textwrap.indent(po["profile"].strip(), "    "), flush=True)
    for mode, rates in ours.items():
        if theirs and rates:
            print(f"{label} post_office: {summary(theirs)}; ours, {mode}: {summary(rates)}; ratio ours/post_office = "
                  f"{statistics.median(rates) / statistics.median(theirs):.2f} (medians), "
                  f"{max(rates) / max(theirs):.2f} (best runs); goal 2.00")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("count", nargs="?", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--postgres", action="store_true", help="also measure both on PostgreSQL")
    parser.add_argument("--profile", action="store_true", help="cProfile post_office's first send step")
    args = parser.parse_args()

    versions = ensure_venv(args.postgres)
    with tempfile.TemporaryDirectory(prefix="notif-bench-workload-") as tmp:
        workload = Path(tmp) / "workload.json"
        work = render_workload(workload)
        print(f"post_office venv {VENV}: {versions}; python {sys.version.split()[0]}")
        print(f"workload: subject {work['subject']!r}, html {len(work['html'])} chars, text {len(work['text'])} "
              f"chars, {work['filename']} {len(base64.b64decode(work['pdf_b64']))} bytes, from {work['from_email']}; "
              f"our MIME message {work['our_mime_bytes']} bytes")
        compare(args.count, args.runs, False, args.profile, workload)
        if args.postgres:
            compare(args.count, args.runs, True, args.profile, workload)


if __name__ == "__main__":
    main()
