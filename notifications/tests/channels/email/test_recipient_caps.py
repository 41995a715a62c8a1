"""Caps that hold: recipients per send (to, cc and bcc together), items and addresses per
batch, and the send throttle counted in recipients. cc and bcc ride on one message."""
from __future__ import annotations

import pytest

from notifications.access.groups import SENDERS
from notifications.models import Message
from notifications.tests.support.api import ApiClient, create_key, make_user
from notifications.tests.support.payloads import INCIDENT_VARS, INVOICE_VARS, WELCOME

pytestmark = pytest.mark.django_db

SEND = "/api/v1/email/send"
BATCH = "/api/v1/email/send-batch"


@pytest.fixture
def sender(default_templates):
    return ApiClient(create_key(make_user("svc", SENDERS)))


def addresses(count: int, prefix: str = "u") -> list[str]:
    return [f"{prefix}{i}@rgz.bj" for i in range(count)]


def batch(*sizes: int) -> dict:
    """A merge whose items have these numbers of addresses."""
    items = [{"to": addresses(size, prefix=f"i{n}u"), "variables": INVOICE_VARS} for n, size in enumerate(sizes)]
    return {"template_key": "billing_invoice_monthly", "items": items}


def assert_413_naming(response, field: str, setting: str) -> None:
    assert response.status_code == 413, response.content
    assert response["Content-Type"] == "application/json"
    assert setting in " ".join(response.json()[field])
    assert Message.objects.count() == 0


# --- recipients of one send ------------------------------------------------------------------

def test_fifty_to_addresses_are_accepted_and_fifty_one_are_a_413(sender):
    assert_413_naming(sender.post(SEND, {**WELCOME, "to": addresses(51)}), "to", "SEND_MAX_RECIPIENTS_PER_REQUEST")
    response = sender.post(SEND, {**WELCOME, "to": addresses(50)})
    assert response.status_code == 201 and response.json()["total"] == 50


def test_cc_and_bcc_count_with_to(sender):
    one_past = {**WELCOME, "to": "john@techconnect.bj", "cc": addresses(30, "c"), "bcc": addresses(20, "b")}
    assert_413_naming(sender.post(SEND, one_past), "to", "SEND_MAX_RECIPIENTS_PER_REQUEST")
    at_limit = {**one_past, "bcc": addresses(19, "b")}
    response = sender.post(SEND, at_limit)
    assert response.status_code == 201, response.content
    [row] = Message.objects.all()
    assert row.address == "john@techconnect.bj"
    assert row.cc == addresses(30, "c") and row.bcc == addresses(19, "b")


def test_an_address_given_twice_counts_and_travels_once(sender):
    body = {**WELCOME, "to": "john@techconnect.bj", "cc": ["sales@rgz.bj", "John@techconnect.bj"],
            "bcc": ["SALES@rgz.bj", "audit@rgz.bj"]}
    assert sender.post(SEND, body).status_code == 201
    [row] = Message.objects.all()
    assert row.cc == ["sales@rgz.bj"] and row.bcc == ["audit@rgz.bj"]


@pytest.mark.parametrize("name", ["cc", "bcc"])
def test_cc_or_bcc_with_two_to_addresses_is_a_400_naming_it(sender, name):
    response = sender.post(SEND, {**WELCOME, "to": ["a@rgz.bj", "b@rgz.bj"], name: "sales@rgz.bj"})
    assert response.status_code == 400, response.content
    assert "single to address" in response.json()[name][0]
    assert Message.objects.count() == 0


def test_the_template_extra_recipients_get_no_cc(sender):
    """incident_alert_critical also goes to noc@rgz.bj: a copy of its own, without the caller's cc."""
    body = {"to": "reseller@techconnect.bj", "template_key": "incident_alert_critical", "variables": INCIDENT_VARS,
            "cc": "sales@rgz.bj", "bcc": "audit@rgz.bj"}
    assert sender.post(SEND, body).status_code == 201
    rows = {row.address: row for row in Message.objects.all()}
    assert set(rows) == {"reseller@techconnect.bj", "noc@rgz.bj"}
    assert rows["reseller@techconnect.bj"].cc == ["sales@rgz.bj"]
    assert rows["reseller@techconnect.bj"].bcc == ["audit@rgz.bj"]
    assert rows["noc@rgz.bj"].cc == [] and rows["noc@rgz.bj"].bcc == []


def test_an_extra_recipient_already_copied_gets_no_second_copy(sender):
    body = {"to": "reseller@techconnect.bj", "template_key": "incident_alert_critical", "variables": INCIDENT_VARS,
            "cc": "NOC@rgz.bj"}
    assert sender.post(SEND, body).status_code == 201
    [row] = Message.objects.all()
    assert row.address == "reseller@techconnect.bj" and row.cc == ["NOC@rgz.bj"]


def test_a_cc_address_receives_exactly_one_copy(sender, smtp_backend, django_capture_on_commit_callbacks):
    body = {"to": "reseller@techconnect.bj", "template_key": "incident_alert_critical", "variables": INCIDENT_VARS,
            "cc": "sales@rgz.bj", "bcc": "audit@rgz.bj"}
    with django_capture_on_commit_callbacks(execute=True):
        assert sender.post(SEND, body).status_code == 201
    received = smtp_backend.wait_for(2)
    smtp_backend.wait_for(3, timeout=0.5)  # nothing more arrives
    assert len(smtp_backend.received) == 2
    by_to = {r.message["To"]: r for r in received}
    main, noc = by_to["reseller@techconnect.bj"], by_to["noc@rgz.bj"]
    assert sorted(main.rcpt_tos) == ["audit@rgz.bj", "reseller@techconnect.bj", "sales@rgz.bj"]
    assert main.message["Cc"] == "sales@rgz.bj" and main.message["Bcc"] is None
    assert noc.rcpt_tos == ["noc@rgz.bj"] and noc.message["Cc"] is None
    assert sum(r.rcpt_tos.count("sales@rgz.bj") for r in received) == 1
    assert sum(r.rcpt_tos.count("audit@rgz.bj") for r in received) == 1
    row = Message.objects.get(address="reseller@techconnect.bj")
    # Every RCPT of the message is on its row.
    assert sorted([row.address, *row.cc, *row.bcc]) == sorted(main.rcpt_tos)


# --- batches -------------------------------------------------------------------------------------

def test_batch_items_at_the_limit_are_accepted_and_one_more_is_a_413(sender, settings):
    settings.SEND_MAX_BATCH_ITEMS = 3
    assert_413_naming(sender.post(BATCH, batch(1, 1, 1, 1)), "items", "SEND_MAX_BATCH_ITEMS")
    response = sender.post(BATCH, batch(1, 1, 1))
    assert response.status_code == 201 and Message.objects.count() == 3


def test_batch_addresses_at_the_limit_are_accepted_and_one_more_is_a_413(sender, settings):
    settings.SEND_MAX_BATCH_RECIPIENTS = 5
    assert_413_naming(sender.post(BATCH, batch(2, 2, 2)), "items", "SEND_MAX_BATCH_RECIPIENTS")
    response = sender.post(BATCH, batch(2, 2, 1))
    assert response.status_code == 201 and Message.objects.count() == 5


def test_a_batch_item_past_the_per_send_cap_is_refused_alone(sender, settings):
    settings.SEND_MAX_RECIPIENTS_PER_REQUEST = 2
    response = sender.post(BATCH, batch(3, 2))
    assert response.status_code == 201, response.content
    refused, *sent = response.json()["items"]
    assert refused["index"] == 0 and "SEND_MAX_RECIPIENTS_PER_REQUEST" in refused["errors"]["to"][0]
    assert [item["index"] for item in sent] == [1, 1] and Message.objects.count() == 2


def test_the_default_caps(settings):
    assert settings.SEND_MAX_RECIPIENTS_PER_REQUEST == 50
    assert settings.SEND_MAX_BATCH_ITEMS == 500
    assert settings.SEND_MAX_BATCH_RECIPIENTS == 1000


# --- the send throttle ---------------------------------------------------------------------------

@pytest.fixture
def send_rate(settings):
    def set_rate(rate: str) -> None:
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                                   "DEFAULT_THROTTLE_RATES": {"api": "1000/minute", "send": rate}}
    return set_rate


def test_a_batch_with_more_recipients_than_the_rate_is_a_429_and_writes_nothing(sender, send_rate):
    send_rate("5/minute")
    response = sender.post(BATCH, batch(2, 2, 2))
    assert response.status_code == 429, response.content
    assert "API_SEND_THROTTLE_RATE" in response.json()["detail"]
    assert "Retry-After" not in response  # waiting would not help: it can never fit
    assert Message.objects.count() == 0
    # The refusal spent nothing: a batch that fits still goes.
    assert sender.post(BATCH, batch(2, 2, 1)).status_code == 201


def test_single_sends_spend_the_rate_per_recipient(sender, send_rate):
    send_rate("5/minute")
    three = {**WELCOME, "to": "john@techconnect.bj", "cc": ["a@rgz.bj", "b@rgz.bj"]}
    assert sender.post(SEND, three).status_code == 201          # 3 of 5
    limited = sender.post(SEND, three)                          # 6 > 5
    assert limited.status_code == 429 and int(limited["Retry-After"]) > 0
    assert Message.objects.count() == 1
    assert sender.post(SEND, {**WELCOME, "to": ["x@rgz.bj", "y@rgz.bj"]}).status_code == 201  # 5 of 5
    assert sender.post(SEND, WELCOME).status_code == 429
    assert Message.objects.count() == 3


def test_a_batch_costs_what_its_single_sends_cost(sender, send_rate):
    send_rate("4/minute")
    assert sender.post(BATCH, batch(1, 3)).status_code == 201
    assert sender.post(SEND, WELCOME).status_code == 429
    assert Message.objects.count() == 4


def test_the_default_send_rate_fits_one_full_batch():
    from config.settings import base

    rate = base.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["send"]
    assert int(rate.split("/")[0]) >= base.SEND_MAX_BATCH_RECIPIENTS
