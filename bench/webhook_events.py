"""A SendGrid event webhook POST of many events (issue 16: 10,000 events kept a web process
busy for 85 s): its wall time and the SQL statements it runs, for 200, 2,000 and 10,000
events over 500 SendGrid-sent messages (delivered, a bounce or a complaint each, and opens,
clicks and deferrals for the rest), then the same POST again (a replay: stored once).

    .venv/bin/python bench/webhook_events.py
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/DBNAME .venv/bin/python bench/webhook_events.py

Nothing is asserted: the test suite bounds the statements (test_webhook_hardening.py).
"""
from __future__ import annotations

import base64
import json
import os
import time
import uuid

os.environ.setdefault("ENVIRONMENT", "development")
os.environ.setdefault("EMAIL_WEBHOOK_SECRET_SENDGRID", "bench:hook")
os.environ.setdefault("WEBHOOK_PROVIDERS", "sendgrid")
os.environ.setdefault("ALLOWED_HOSTS", "testserver")

from _setup import describe_database, peak_rss_mb, setup  # noqa: E402

setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from notifications.models import DeliveryEvent, Message, Status  # noqa: E402

MESSAGES = 500
AUTH = {"Authorization": "Basic " + base64.b64encode(b"bench:hook").decode()}


def messages() -> list[Message]:
    now = timezone.now()
    rows = [Message(address=f"user{n}@example.com", from_email="noreply@rgz.bj", subject="Bench",
                         status=Status.SENT, sent_at=now, provider="sendgrid", provider_message_id=f"sg-{n}")
            for n in range(MESSAGES)]
    Message.objects.bulk_create(rows, batch_size=500)
    return rows


def events(rows: list[Message], count: int) -> list[dict]:
    out = []
    for n, row in enumerate(rows):
        kind = "bounce" if n % 20 == 0 else "spamreport" if n % 20 == 1 else "delivered"
        out.append({"email": row.address, "timestamp": 1765000000 + n, "event": kind, "type": "bounce",
                    "sg_event_id": uuid.uuid4().hex, "sg_message_id": f"sg-{n}.filter", "notification_id": str(row.pk)})
        if len(out) >= count:
            return out
    kinds = ("open", "click", "deferred")
    while len(out) < count:
        row = rows[len(out) % len(rows)]
        out.append({"email": row.address, "timestamp": 1765000000, "event": kinds[len(out) % 3],
                    "url": "https://rgz.bj/", "sg_event_id": uuid.uuid4().hex, "notification_id": str(row.pk)})
    return out


def post(body: bytes) -> tuple[float, int, int]:
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        status = Client().post("/anymail/sendgrid/tracking/", data=body, content_type="application/json",
                               headers=AUTH).status_code
        elapsed = time.perf_counter() - started
    return elapsed, len(queries), status


print(f"database: {describe_database()}")
rows = messages()
for count in (200, 2_000, 10_000):
    Message.objects.update(status=Status.SENT)
    DeliveryEvent.objects.all().delete()
    body = json.dumps(events(rows, count)).encode()
    first = post(body)
    again = post(body)
    print(f"{count:>6} events ({len(body) / 1e6:.1f} MB): {first[0] * 1000:7.0f} ms, {first[1]:3d} statements "
          f"(HTTP {first[2]}); replayed: {again[0] * 1000:6.0f} ms, {again[1]:3d} statements")
print(f"peak RSS {peak_rss_mb():.0f} MB")
