"""Queueing speed of send_mail_template(): validate, render, write the audit rows (no delivery).

    .venv/bin/python bench/send.py [N] [recipients per call]
"""
from __future__ import annotations

import sys
import time

from _setup import describe_database, peak_rss_mb, setup

setup()

from django.test.utils import override_settings  # noqa: E402

from notifications.models import Message, EmailTemplate  # noqa: E402
from notifications.channels.email.sending import send_mail_template  # noqa: E402

count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
per_call = int(sys.argv[2]) if len(sys.argv) > 2 else 1
template = EmailTemplate.objects.get(key="onboarding_welcome")
with override_settings(OUTBOX_ACTIVE=False):  # audit rows only: measures the sending side alone
    started = time.perf_counter()
    for index in range(count):
        to = [f"user{index}-{n}@example.com" for n in range(per_call)]
        send_mail_template("onboarding_welcome", to, template.sample_variables)
    elapsed = time.perf_counter() - started
rows = Message.objects.count()
print(f"send_mail_template on {describe_database()}: {count} calls x {per_call} recipients = {rows} rows "
      f"in {elapsed:.2f}s: {count / elapsed:.0f} calls/s, {rows / elapsed:.0f} rows/s")
print(f"peak RSS {peak_rss_mb():.0f} MB")
