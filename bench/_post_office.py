"""django-post_office on the benchmark's workload, in a throwaway virtualenv of its own.

post_office is never a dependency of ours: `ensure_venv()` builds (once, then reuses) a
virtualenv outside the repo with the versions pinned below, and `run()` drives it there
with an inner script. The inner script queues the workload with `mail.send()` (one call
per recipient, each its own transaction, as ours is measured), then times
`mail.send_queued(processes=1)` delivering it to the benchmark's sink: THREADS_PER_PROCESS=1
(`threads`: post_office's default is 5, each thread with a connection of its own),
BATCH_SIZE=N (one batch), no Celery, Django's SMTP backend, post_office's default LOG_LEVEL
(2: a Log row per message), on its own PostgreSQL database. Like ours, its commits are read
from pg_stat_database once its connection has gone (so its counters are flushed).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

VENV = Path(os.environ.get("POST_OFFICE_BENCH_VENV", "/tmp/notif-bench-post-office/venv"))
# The newest django-post_office declaring Django 5.2 support when this was written (3.12.0 lists 4.2-6.1);
# psycopg is the project's own version.
PINS = {"Django": "5.2.19", "django-post_office": "3.12.0", "psycopg[binary]": "3.3.9"}

SETTINGS = """
SECRET_KEY = "bench-only"
USE_TZ = True
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "post_office"]
TEMPLATES = [{{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}}]
DATABASES = {{"default": {database!r}}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
MEDIA_ROOT = {media!r}  # post_office stores each attachment as a file
DEFAULT_FROM_EMAIL = {from_email!r}
EMAIL_HOST = "127.0.0.1"
EMAIL_PORT = {port}
EMAIL_USE_TLS = EMAIL_USE_SSL = False
EMAIL_HOST_USER = EMAIL_HOST_PASSWORD = ""
POST_OFFICE = {{
    "BACKENDS": {{"default": "django.core.mail.backends.smtp.EmailBackend"}},
    "DEFAULT_PRIORITY": "medium",
    "THREADS_PER_PROCESS": {threads},
    "BATCH_SIZE": {count},
    "CELERY_ENABLED": False,
}}
LOGGING = {{  # as our processes run with LOG_LEVEL=WARNING
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {{"console": {{"class": "logging.StreamHandler"}}}},
    "loggers": {{"post_office": {{"handlers": ["console"], "level": "WARNING"}}}},
}}
"""

INNER = r'''
"""post_office side, run in its venv: queue N (timed), time send_queued(processes=1), report."""
import base64, json, sys, time
import django
django.setup()
import psycopg
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.db import connection
from post_office import mail
from post_office.models import STATUS, Email, Log

count, workload_path, tag, admin_dsn = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
dbname = connection.settings_dict["NAME"]


def settled():
    """This database's counters once no backend is connected to it (a backend flushes its own at exit)."""
    connection.close()
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        for _ in range(200):
            if not admin.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [dbname]).fetchone()[0]:
                break
            time.sleep(0.05)
        admin.execute("SELECT pg_stat_clear_snapshot()")
        row = admin.execute("SELECT xact_commit, tup_inserted, tup_updated, tup_deleted FROM pg_stat_database "
                            "WHERE datname = %s", [dbname]).fetchone()
    return dict(zip(("commits", "inserted", "updated", "deleted"), row))


call_command("migrate", verbosity=0)
work = json.load(open(workload_path))
pdf = base64.b64decode(work["pdf_b64"])
started = time.perf_counter()
for i in range(count):  # one call per recipient, each its own transaction
    mail.send([f"reseller{i}@example.com"], work["from_email"], subject=work["subject"], message=work["text"],
              html_message=work["html"], priority="medium", headers={"X-Notification-Id": f"{tag}-{i}"},
              attachments={work["filename"]: {"file": ContentFile(pdf), "mimetype": work["content_type"]}})
queue_seconds = time.perf_counter() - started
# mail.send runs the strings through Django's template engine: make sure nothing was changed.
first = Email.objects.order_by("id").first()
assert (first.subject, first.html_message, first.message) == (work["subject"], work["html"], work["text"])
queued = Email.objects.filter(status=STATUS.queued).count()
before = settled()
delivery_started = time.time()
while mail.get_queued().exists():  # BATCH_SIZE=N: a single batch
    mail.send_queued(processes=1)
delivery_seconds = time.time() - delivery_started
after = settled()
print(json.dumps({"count": count, "queued": queued, "queue_seconds": queue_seconds,
                  "delivery_started": delivery_started, "delivery_seconds": delivery_seconds,
                  "sent": Email.objects.filter(status=STATUS.sent).count(),
                  "logs": Log.objects.filter(status=STATUS.sent).count(),
                  "db": {key: after[key] - before[key] for key in before}}))
'''


def _run(cmd, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, text=True, capture_output=True, timeout=1800, **kwargs)


def ensure_venv() -> str:
    """Create (or reuse) the throwaway venv with the pinned packages; returns their versions."""
    python = VENV / "bin" / "python"
    wanted = {name.split("[")[0]: version for name, version in PINS.items()}
    check = ("import importlib.metadata as m, json, sys; "
             "print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))")

    def installed() -> dict:
        try:
            return json.loads(_run([str(python), "-c", check, *wanted]).stdout)
        except (subprocess.CalledProcessError, FileNotFoundError):
            return {}

    if installed() != wanted:
        if not python.exists():
            print(f"creating {VENV} ...", flush=True)
            _run([sys.executable, "-m", "venv", str(VENV)])
        print("installing " + " ".join(f"{n}=={v}" for n, v in PINS.items()) + " ...", flush=True)
        _run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
              *(f"{n}=={v}" for n, v in PINS.items())])
        if installed() != wanted:
            sys.exit(f"{VENV} does not hold {wanted}: {installed()}")
    return ", ".join(f"{n} {v}" for n, v in installed().items())


def run(*, count: int, workload: Path, tag: str, smtp_port: int, database: dict, admin_dsn: str,
        threads: int = 1) -> dict:
    """Queue and deliver `count` messages with post_office; X-Notification-Id is `<tag>-<i>`.

    `database` is the Django DATABASES entry of an empty database; returns the inner
    script's report (times, counts, and this database's commit and row counters during delivery).
    """
    work = json.loads(workload.read_text())
    tmp = Path(tempfile.mkdtemp(prefix="notif-bench-po-"))
    try:
        (tmp / "po_bench_settings.py").write_text(SETTINGS.format(
            database=database, media=str(tmp / "media"), from_email=work["from_email"], count=count, port=smtp_port,
            threads=threads))
        (tmp / "po_deliver.py").write_text(INNER)
        env = dict(os.environ, DJANGO_SETTINGS_MODULE="po_bench_settings", PYTHONPATH=str(tmp))
        try:
            done = _run([str(VENV / "bin" / "python"), str(tmp / "po_deliver.py"), str(count), str(workload), tag,
                         admin_dsn], cwd=tmp, env=env, start_new_session=True)
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(f"post_office run failed:\n{exc.stdout}\n{exc.stderr}") from None
        return json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
