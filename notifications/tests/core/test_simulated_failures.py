"""Failures on demand (`@simulator.invalid`): through the test keys' simulator and the development
backend, the real retry policy runs on them; anywhere else they are refused before a row is written."""
from __future__ import annotations

import io

import pytest
from django.core.mail import EmailMessage as DjangoEmail

from notifications.channels.email.backends.development import (
    OUTAGE,
    PERMANENT_FAILURE,
    TEMPORARY_FAILURE,
    TIMEOUT,
    DevelopmentBackend,
)
from notifications.exceptions import DeliveryOutcomeUnknown, InvalidRecipient, ServerUnreachable
from notifications.models import DeliveryAttempt, Message, EmailTemplate, Status
from notifications.channels.email.mail_merge import send_batch
from notifications.channels.email.sending import send_mail_template, send_simple_mail
from notifications.tests.support.api import ApiClient, create_key, make_user
from notifications.tests.support.worker import wait_until

DEVELOPMENT_BACKEND = "notifications.backends.DevelopmentBackend"
RMA_VARS = {"rma_number": "RMA-1", "serial_number": "SN-1", "status": "ouvert", "link_tracking": "https://rgz.bj/rma/1"}
CUTOVER_VARS = {"reseller_name": "Tech Connect SA", "items_done": "28", "items_total": "40",
                "link_portal": "https://admin-rgz.duckdns.org"}
Outcome = DeliveryAttempt.Outcome


def attempts_of(message: Message) -> list[str]:
    return list(message.delivery_attempts.order_by("number").values_list("outcome", flat=True))


def settled(pk, status: str, attempts: int) -> bool:
    message = Message.objects.get(pk=pk)
    return message.status == status and message.attempts == attempts


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_each_failure_address_ends_as_its_real_failure_would_through_a_real_worker(
    default_templates, start_worker, settings
):
    """A test key's messages (the simulator) and live ones on the development backend, in one
    worker: a temporary failure is retried then `failed`, a permanent one and a timeout after
    DATA are `failed` at once (the timeout's outcome unknown), an outage counts no attempt."""
    settings.EMAIL_BACKEND = DEVELOPMENT_BACKEND  # what `make run` has: live sends to them are accepted
    max_attempts = EmailTemplate.objects.get(key="rma_confirmation").max_attempts
    assert max_attempts == 2
    key = create_key(make_user("ci-bot", "Senders"), test=True)
    api = ApiClient(key)
    response = api.post("/api/v1/email/send", {
        "template_key": "rma_confirmation", "variables": RMA_VARS,
        "to": [TEMPORARY_FAILURE, PERMANENT_FAILURE, TIMEOUT, OUTAGE, "reseller@techconnect.bj"],
    })
    assert response.status_code == 201, response.json()
    simulated = {item["to"]: item["id"] for item in response.json()["items"]}
    live = {address: message.pk for address in (TEMPORARY_FAILURE, PERMANENT_FAILURE, TIMEOUT)
            for message in send_mail_template("rma_confirmation", address, RMA_VARS)}
    # The live outage on a lane of its own (bulk): a real outage rests its whole lane.
    [live_outage] = send_mail_template("cutover_reminder", OUTAGE, CUTOVER_VARS)

    worker = start_worker(beat=True, env={
        "EMAIL_BACKEND": DEVELOPMENT_BACKEND, "OUTBOX_RETRY_BACKOFF_BASE_SECONDS": "0.2",
        "OUTBOX_RETRY_BACKOFF_MAX_SECONDS": "0.5",
    })
    for name, ids, server in (("test key", simulated, "simulator"), ("development backend", live, "development")):
        assert wait_until(lambda ids=ids: settled(ids[TEMPORARY_FAILURE], Status.FAILED, max_attempts)), (
            name, worker.log())
        assert wait_until(lambda ids=ids: settled(ids[PERMANENT_FAILURE], Status.FAILED, 1)), (name, worker.log())
        assert wait_until(lambda ids=ids: settled(ids[TIMEOUT], Status.FAILED, 1)), (name, worker.log())
        temporary, permanent, timeout = (Message.objects.get(pk=ids[a])
                                         for a in (TEMPORARY_FAILURE, PERMANENT_FAILURE, TIMEOUT))
        assert attempts_of(temporary) == [Outcome.TRANSIENT] * max_attempts, name
        assert temporary.error_message.startswith("transient: the SMTP server refused the recipients")
        assert f"(after {max_attempts} of {max_attempts} attempts)" in temporary.error_message
        assert attempts_of(permanent) == [Outcome.PERMANENT], name
        assert permanent.error_message.startswith("permanent: the SMTP server refused the recipients")
        assert attempts_of(timeout) == [Outcome.UNKNOWN], name
        assert "the outcome is unknown" in timeout.error_message
        assert set(temporary.delivery_attempts.values_list("sent_via", flat=True)) == {server}

    outages = (simulated[OUTAGE], live_outage.pk)
    for pk in outages:
        assert wait_until(lambda pk=pk: Message.objects.get(pk=pk).error_message.startswith(
            "Not attempted: ")), worker.log()
    for pk in outages:
        # Claimed again and again by the sweep, put back each time: never an attempt.
        assert wait_until(lambda pk=pk: settled(pk, Status.QUEUED, 0)), worker.log()
        assert not DeliveryAttempt.objects.filter(message_id=pk).exists()
    assert "Outage on the bulk lane" in worker.log()
    # The simulated outage held nothing back: the test key's ordinary message was delivered.
    assert wait_until(lambda: Message.objects.get(pk=simulated["reseller@techconnect.bj"]).status
                      == Status.DELIVERED), worker.log()


@pytest.mark.django_db
def test_a_live_key_sending_to_a_simulator_address_is_a_400_naming_the_field(default_templates):
    api = ApiClient(create_key(make_user("billing", "Senders")))
    response = api.post("/api/v1/email/send", {
        "template_key": "rma_confirmation", "variables": RMA_VARS, "to": "reseller@techconnect.bj",
        "bcc": TIMEOUT,
    })
    assert response.status_code == 400
    body = response.json()
    assert body["codes"] == {"bcc": ["simulator_address_needs_test_key"]}
    assert "test key" in body["bcc"][0]
    response = api.post("/api/v1/email/send", {
        "template_key": "rma_confirmation", "variables": RMA_VARS, "to": "Bounce@Simulator.Invalid",
    })
    assert response.json()["codes"] == {"to": ["simulator_address_needs_test_key"]}
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_code_without_a_test_key_is_refused_unless_the_development_backend_honours_them(
    default_templates, settings
):
    for send in (
        lambda: send_mail_template("rma_confirmation", OUTAGE, RMA_VARS),
        lambda: send_simple_mail(PERMANENT_FAILURE, "Subject", "Text."),
    ):
        with pytest.raises(InvalidRecipient) as refused:
            send()
        assert refused.value.code == "simulator_address_needs_test_key" and refused.value.field == "to"
    [item] = send_batch("rma_confirmation", [{"to": TIMEOUT, "variables": RMA_VARS}, {
        "to": "reseller@techconnect.bj", "variables": RMA_VARS}], is_test=False)[:1]
    assert item.codes == {"to": ["simulator_address_needs_test_key"]}
    assert Message.objects.count() == 1
    settings.EMAIL_BACKEND = DEVELOPMENT_BACKEND
    assert [m.status for m in send_mail_template("rma_confirmation", OUTAGE, RMA_VARS)] == [Status.QUEUED]


def test_the_development_backend_writes_other_mail_to_the_console_and_raises_the_real_failures():
    stream = io.StringIO()
    backend = DevelopmentBackend(stream=stream)
    assert backend.send_messages([DjangoEmail("Hello", "Body", "noreply@rgz.bj", ["john@techconnect.bj"])]) == 1
    assert "Subject: Hello" in stream.getvalue()
    for address, raised in ((TIMEOUT, DeliveryOutcomeUnknown), (OUTAGE, ServerUnreachable)):
        with pytest.raises(raised):
            backend.send_messages([DjangoEmail("Hello", "Body", "noreply@rgz.bj", ["a@rgz.bj"], cc=[address])])
    assert stream.getvalue().count("Subject: Hello") == 1
