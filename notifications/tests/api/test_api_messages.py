"""The audit trail through the API: filtering the message list, and a message's events."""
from __future__ import annotations

import datetime as dt

import pytest

from notifications.access.groups import AUDITORS, SENDERS
from notifications.models import DeliveryEvent, Message, Status
from notifications.tests.support.api import ApiClient, assert_matches_schema, create_key, make_user
from notifications.tests.support.payloads import INCIDENT, INVOICE, WELCOME

pytestmark = pytest.mark.django_db

LIST = "/api/v1/email/messages"


@pytest.fixture
def trail(default_templates, django_capture_on_commit_callbacks):
    """Six messages of three templates in four statuses, sent with a live key and a test key.

    Returns {name: id}. Deliveries run where their callbacks are captured; the invoice's
    never runs, so it stays queued.
    """
    live = ApiClient(create_key(make_user("services", SENDERS)))
    test = ApiClient(create_key(make_user("ci", SENDERS), test=True))

    def ids(response) -> dict[str, str]:
        assert response.status_code == 201, response.content
        return {item["to"]: item["id"] for item in response.json()["items"]}

    with django_capture_on_commit_callbacks(execute=True):
        welcome = ids(live.post("/api/v1/email/send", WELCOME))
        incident = ids(live.post("/api/v1/email/send", INCIDENT))
        simulated = ids(test.post("/api/v1/email/send", {
            **WELCOME, "to": ["john@techconnect.bj", "bounce@simulator.invalid"],
        }))
    invoice = ids(live.post("/api/v1/email/send", INVOICE))
    trail = {
        "welcome-sent": welcome["john@techconnect.bj"],
        "incident-noc": incident["noc@rgz.bj"],
        "incident-reseller": incident["reseller@techconnect.bj"],
        "invoice-queued": invoice["reseller@techconnect.bj"],
        "welcome-delivered": simulated["john@techconnect.bj"],
        "welcome-bounced": simulated["bounce@simulator.invalid"],
    }
    statuses = {str(pk): status for pk, status in Message.objects.values_list("id", "status")}
    assert {name: statuses[pk] for name, pk in trail.items()} == {
        "welcome-sent": Status.SENT, "incident-noc": Status.SENT, "incident-reseller": Status.SENT,
        "invoice-queued": Status.QUEUED, "welcome-delivered": Status.DELIVERED, "welcome-bounced": Status.BOUNCED,
    }
    return trail


@pytest.fixture
def auditor():
    return ApiClient(create_key(make_user("audit", AUDITORS)))


FILTERS = {
    "status=sent": {"welcome-sent", "incident-noc", "incident-reseller"},
    "status=queued": {"invoice-queued"},
    "status=bounced": {"welcome-bounced"},
    "template_key=onboarding_welcome": {"welcome-sent", "welcome-delivered", "welcome-bounced"},
    "template_key=incident_alert_critical": {"incident-noc", "incident-reseller"},
    "template_key=rma_confirmation": set(),
    "status=sent&template_key=incident_alert_critical": {"incident-noc", "incident-reseller"},
    "status=sent&template_key=onboarding_welcome": {"welcome-sent"},
    "to=reseller@techconnect.bj&status=sent": {"incident-reseller"},
    "to=reseller@techconnect.bj&template_key=billing_invoice_monthly": {"invoice-queued"},
    "to=john@techconnect.bj&template_key=onboarding_welcome&status=delivered": {"welcome-delivered"},
    "to=noc@rgz.bj&status=queued": set(),
}


@pytest.mark.parametrize("query, expected", FILTERS.items(), ids=FILTERS.keys())
def test_messages_filter_by_status_template_and_recipient(trail, auditor, query, expected):
    response = auditor.get(f"{LIST}?{query}")
    assert response.status_code == 200, response.content
    assert_matches_schema("GET", LIST, response)
    body = response.json()
    assert {item["id"] for item in body["items"]} == {trail[name] for name in expected}
    assert body["total"] == len(expected)
    everything = auditor.get(LIST).json()
    assert everything["total"] == len(trail)


def test_an_unknown_status_is_a_400_naming_it(trail, auditor):
    response = auditor.get(f"{LIST}?status=lost")
    assert response.status_code == 400 and "status" in response.json()


def test_message_detail_lists_its_own_events_in_order(trail, auditor):
    def events(name: str) -> list[dict]:
        path = f"{LIST}/{trail[name]}"
        response = auditor.get(path)
        assert response.status_code == 200, response.content
        assert_matches_schema("GET", path, response)
        return response.json()["events"]

    bounced = events("welcome-bounced")
    assert [(e["event_type"], e["provider"], e["detail"]) for e in bounced] == [
        ("sent", "simulator", "Test key: accepted by the simulator, not delivered."),
        ("bounced", "simulator", "Test key: simulated bounced."),
    ]
    assert {e["id"] for e in bounced} == {
        str(pk) for pk in DeliveryEvent.objects.filter(message_id=trail["welcome-bounced"]).values_list("id", flat=True)
    }
    assert [e["event_type"] for e in events("welcome-delivered")] == ["sent", "delivered"]

    # A provider's reports, recorded out of order, are listed by when they happened.
    message = Message.objects.get(pk=trail["welcome-sent"])
    at = dt.datetime(2026, 2, 21, 14, 30, tzinfo=dt.UTC)
    DeliveryEvent.objects.create(message=message, event_type="delivered", provider="sendgrid",
                                 occurred_at=at + dt.timedelta(seconds=5), detail="250 OK")
    DeliveryEvent.objects.create(message=message, event_type="sent", provider="sendgrid", occurred_at=at)
    assert [(e["event_type"], e["provider"], e["occurred_at"], e["detail"]) for e in events("welcome-sent")] == [
        ("sent", "sendgrid", "2026-02-21T14:30:00Z", ""),
        ("delivered", "sendgrid", "2026-02-21T14:30:05Z", "250 OK"),
    ]
    assert events("invoice-queued") == []
