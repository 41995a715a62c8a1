"""Races at the API, on PostgreSQL: two requests with one Idempotency-Key arriving at once."""
from __future__ import annotations

import threading

import pytest

from notifications.access.groups import SENDERS
from notifications.models import Message, IdempotencyRecord
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
    assert Message.objects.count() == 1
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
    assert Message.objects.count() == 4


@pytest.mark.parametrize("round_", range(2))
def test_two_puts_at_once_with_one_etag_one_is_taken_and_one_is_a_409(default_templates, round_):
    """The check and the write happen under the template's row lock: arriving together, the
    second PUT reads the first's version, never the state both were based on."""
    require_postgres()
    from notifications.access.groups import TEMPLATE_EDITORS
    from notifications.models import EmailTemplate

    path = "/api/v1/email/templates/rma_confirmation"
    raws = [create_key(make_user(f"editor{round_}-{n}", TEMPLATE_EDITORS)) for n in range(2)]
    etag = ApiClient(raws[0]).get(path)["ETag"]
    bodies = iter([{"subject": f"RMA {{{{ rma_number }}}} {n}",
                    "html_content": "<p>{{ rma_number }} {{ serial_number }} {{ status }} {{ link_tracking }}</p>"}
                   for n in range(2)])
    clients = iter(ApiClient(raw) for raw in raws)
    lock = threading.Lock()

    def put():
        with lock:
            client, body = next(clients), next(bodies)
        return client.put(path, body, headers={"If-Match": etag})

    responses = concurrently(2, put)
    assert all(not isinstance(r, Exception) for r in responses), responses
    assert sorted(r.status_code for r in responses) == [200, 409], [r.content for r in responses]
    taken = next(r for r in responses if r.status_code == 200).json()
    refused = next(r for r in responses if r.status_code == 409).json()
    assert refused["active_version"]["id"] == taken["id"] and refused["codes"] == {"detail": "stale_version"}
    template = EmailTemplate.objects.get(key="rma_confirmation")
    assert template.versions.count() == 2 and str(template.versions.get(is_active=True).pk) == taken["id"]
