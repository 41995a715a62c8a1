"""Delivery speed in one process: N queued messages through the SMTP backend to a local
aiosmtpd server (its own process, a sink) over one kept-open connection, as a Celery worker
would deliver them: one `deliver_message` task per message, or with --batch in batches of
EMAIL_DELIVERY_BATCH_SIZE as `deliver_messages` tasks deliver the messages of one send.
--floor sends the same stored bytes with bare smtplib and no database: the most any client
in Python gets from this server, the ceiling for us and for django-post_office alike.

    .venv/bin/python bench/deliver.py [N] [--batch | --floor] [--profile]
"""
from __future__ import annotations

import os
import sys
import time

from _setup import describe_database, peak_rss_mb, setup

setup()

from django.test.utils import override_settings  # noqa: E402

from notifications.models import EmailMessage, EmailTemplate, Status  # noqa: E402
from django.conf import settings  # noqa: E402

from notifications.services import batches, delivery  # noqa: E402
from notifications.services.sending import send_mail_template  # noqa: E402
from notifications.tests.support.files import make_pdf  # noqa: E402
from notifications.tests.support.services import free_port  # noqa: E402

count = int(next((a for a in sys.argv[1:] if a.isdigit()), 500))
import socket  # noqa: E402
import subprocess  # noqa: E402

port = free_port()
server = subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}", "-c",
                           "aiosmtpd.handlers.Sink"])
for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        break
    except OSError:
        time.sleep(0.05)
template = EmailTemplate.objects.get(key="billing_invoice_monthly")
pdf = make_pdf()
smtp = dict(EMAIL_BACKEND="notifications.backends.SMTPBackend", EMAIL_HOST="127.0.0.1", EMAIL_PORT=port,
            EMAIL_USE_TLS=False, EMAIL_USE_SSL=False, EMAIL_HOST_USER="", EMAIL_HOST_PASSWORD="",
            CELERY_TASK_ALWAYS_EAGER=False)
with override_settings(**smtp):
    from django.db import transaction

    with transaction.atomic():  # queue without delivering: on_commit runs after, and we drop it
        ids = [m.pk for i in range(count) for m in send_mail_template(
            "billing_invoice_monthly", f"reseller{i}@example.com", template.sample_variables,
            attachments=[("invoice.pdf", pdf, "application/pdf")])]
        transaction.get_connection().run_on_commit = []

    batch = "--batch" in sys.argv
    size = settings.EMAIL_DELIVERY_BATCH_SIZE

    floor = "--floor" in sys.argv
    if floor:
        import smtplib

        stored = list(EmailMessage.objects.filter(pk__in=ids).values_list("recipient_email", "from_email", "mime"))

    def run() -> float:
        started = time.perf_counter()
        if floor:
            with smtplib.SMTP("127.0.0.1", port) as client:
                for recipient, sender, mime in stored:
                    client.sendmail(sender, [recipient], bytes(mime))
                elapsed = time.perf_counter() - started
            EmailMessage.objects.filter(pk__in=ids).update(status=Status.SENT)  # counted as sent, untimed
            return elapsed
        if batch:
            for start in range(0, len(ids), size):
                batches.deliver_many(message_ids=ids[start:start + size])
        else:
            for message_id in ids:
                delivery.deliver(message_id)
        return time.perf_counter() - started

    if "--profile" in sys.argv:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        elapsed = profiler.runcall(run)
        pstats.Stats(profiler).sort_stats(os.environ.get("SORT", "cumulative")).print_stats(int(os.environ.get("TOP", "30")))
    else:
        elapsed = run()
server.terminate()
sent = EmailMessage.objects.filter(status=Status.SENT).count()
mode = "bare smtplib, no database" if floor else f"in batches of {size}" if batch else "one task each"
print(f"deliver on {describe_database()}: {count} invoices with a PDF in {elapsed:.2f}s: {count / elapsed:.0f} msg/s; "
      f"{sent} sent ({mode})")
print(f"peak RSS {peak_rss_mb():.0f} MB")
