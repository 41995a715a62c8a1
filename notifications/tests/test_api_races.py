"""Races at the API, on PostgreSQL: two requests with one Idempotency-Key arriving at once."""
from __future__ import annotations

import threading

import pytest

from notifications.groups import SENDERS
from notifications.models import EmailMessage, IdempotencyRecord
from notifications.tests.support.api import ApiClient, create_key, make_user
from notifications.tests.support.concurrency import concurrently
from notifications.tests.support.services import require_postgres
from notifications.tests.support.payloads import WELCOME

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("round_", range(3))
def test_two_concurrent_requests_with_one_key_send_once(default_templates, round_):
    require_postgres()
    raw = create_key(make_user(f"svc{round_}", SENDERS))
    headers = {"Idempotency-Key": f"same-{round_}"}
    responses = concurrently(2, lambda: ApiClient(raw).post("/api/v1/email/send", WELCOME, headers=headers))
    assert all(not isinstance(r, Exception) for r in responses), responses
    assert [r.status_code for r in responses] == [201, 201], [r.content for r in responses]
    assert responses[0].json() == responses[1].json()
    assert EmailMessage.objects.count() == 1
    assert IdempotencyRecord.objects.count() == 1


def test_concurrent_requests_with_other_keys_all_send(default_templates):
    require_postgres()
    raw = create_key(make_user("svc", SENDERS))
    counter = iter(range(100))
    lock = threading.Lock()

    def call():
        with lock:
            number = next(counter)
        return ApiClient(raw).post("/api/v1/email/send", WELCOME, headers={"Idempotency-Key": f"k{number}"})

    responses = concurrently(4, call)
    assert [r.status_code for r in responses] == [201] * 4
    assert EmailMessage.objects.count() == 4
