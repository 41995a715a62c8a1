"""Who may call what: the permission matrix on every endpoint, keys, revocation, test keys."""
from __future__ import annotations

import pytest

from notifications.access.groups import ADMINISTRATORS, AUDITORS, SENDERS, TEMPLATE_EDITORS
from notifications.models import APIKey, DeliveryEvent, Message, Status
from notifications.channels.email.sending import send_mail_template
from notifications.tests.support.api import ApiClient, create_key, make_user
from notifications.tests.support.payloads import INVOICE, TEST_RENDER, WELCOME

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "no_group", "sender", "editor", "auditor", "administrator")
RMA_VERSION = {
    "subject": "RMA {{ rma_number }} — {{ serial_number }}",
    "html_content": "<p>{{ rma_number }} {{ serial_number }} {{ status }} {{ link_tracking }}</p>",
}

#: endpoint → expected status per role, in ROLES order.
MATRIX = {
    ("POST", "/api/v1/email/send", "welcome"): (401, 403, 201, 403, 403, 201),
    ("GET", "/api/v1/email/templates", None): (401, 403, 200, 200, 200, 200),
    ("GET", "/api/v1/email/templates/billing_invoice_monthly", None): (401, 403, 200, 200, 200, 200),
    ("POST", "/api/v1/email/templates/billing_invoice_monthly/test", "test"): (401, 403, 403, 200, 403, 200),
    ("PUT", "/api/v1/email/templates/rma_confirmation", "version"): (401, 403, 403, 200, 403, 200),
    ("GET", "/api/v1/email/messages", None): (401, 403, 200, 403, 200, 200),
    ("GET", "/api/v1/email/messages/{other}", None): (401, 403, 404, 403, 200, 200),
    ("GET", "/api/v1/email/messages/{own}", None): (401, 403, 200, 403, 200, 200),
}
BODIES = {"welcome": WELCOME, "test": TEST_RENDER, "version": RMA_VERSION, None: None}


@pytest.fixture
def clients(default_templates, settings):
    settings.EMAIL_TEST_RECIPIENTS = [TEST_RENDER["to"]]  # test sends go to allowed addresses only
    groups = {"sender": [SENDERS], "editor": [TEMPLATE_EDITORS], "auditor": [AUDITORS],
              "administrator": [ADMINISTRATORS], "no_group": []}
    result = {"anonymous": ApiClient()}
    for role, names in groups.items():
        result[role] = ApiClient(create_key(make_user(role, *names)))
    return result


@pytest.mark.parametrize("endpoint", MATRIX, ids=[f"{m} {p}" for m, p, _ in MATRIX])
def test_permission_matrix(clients, endpoint):
    method, path, body = endpoint
    other = send_mail_template("onboarding_welcome", "x@rgz.bj", WELCOME["variables"],
                               sent_by=make_user("someone-else", SENDERS))[0]
    sender_user = APIKey.objects.get(user__username="sender").user
    own = send_mail_template("onboarding_welcome", "y@rgz.bj", WELCOME["variables"], sent_by=sender_user)[0]
    path = path.format(other=other.pk, own=own.pk)
    got = {}
    for role in ROLES:
        response = clients[role].request(method, path, BODIES[body])
        got[role] = response.status_code
        assert response["Content-Type"].startswith("application/json"), (role, response["Content-Type"])
    assert got == dict(zip(ROLES, MATRIX[endpoint], strict=True)), got


def test_a_sender_lists_only_their_own_messages(clients):
    send_mail_template("onboarding_welcome", "x@rgz.bj", WELCOME["variables"], sent_by=make_user("other", SENDERS))
    assert clients["sender"].post("/api/v1/email/send", WELCOME).status_code == 201
    mine = clients["sender"].get("/api/v1/email/messages").json()
    assert mine["total"] == 1 and mine["items"][0]["to"] == "john@techconnect.bj"
    assert clients["auditor"].get("/api/v1/email/messages").json()["total"] == 2


def test_unauthenticated_says_how_to_authenticate(clients):
    response = clients["anonymous"].get("/api/v1/email/templates")
    assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Bearer")
    bad = ApiClient("ntf_live_not-a-real-key").get("/api/v1/email/templates")
    assert bad.status_code == 401 and "Invalid" in bad.json()["detail"]


def test_revoked_keys_and_inactive_users_are_refused(default_templates):
    user = make_user("svc", SENDERS)
    raw = create_key(user)
    client = ApiClient(raw)
    assert client.get("/api/v1/email/templates").status_code == 200
    APIKey.objects.get(user=user).revoke()
    assert client.get("/api/v1/email/templates").status_code == 401
    raw2 = create_key(user)
    user.is_active = False
    user.save()
    assert ApiClient(raw2).get("/api/v1/email/templates").status_code == 401


def test_keys_are_stored_hashed_and_shown_once(default_templates):
    user = make_user("svc", SENDERS)
    raw = create_key(user)
    key = APIKey.objects.get(user=user)
    assert raw.startswith("ntf_live_") and len(raw) > 40
    assert raw not in (key.key_hash, key.prefix) and key.prefix == raw[:13]
    assert not APIKey.objects.filter(key_hash=raw).exists()


def test_session_auth_works_for_the_browsable_api(client, default_templates):
    user = make_user("staff", AUDITORS)
    client.force_login(user)
    response = client.get("/api/v1/email/templates", HTTP_ACCEPT="text/html")
    assert response.status_code == 200 and b"billing_invoice_monthly" in response.content


def test_test_key_messages_are_never_delivered_and_end_in_simulated_statuses(
    default_templates, smtp_backend, django_capture_on_commit_callbacks
):
    client = ApiClient(create_key(make_user("ci", SENDERS), test=True))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/v1/email/send", {
            **WELCOME, "to": ["john@techconnect.bj", "bounce@simulator.invalid", "complaint@simulator.invalid"],
        })
    assert response.status_code == 201, response.content
    smtp_backend.wait_for(1, timeout=1.0)
    assert smtp_backend.received == []
    final = {m.address: m for m in Message.objects.all()}
    assert final["john@techconnect.bj"].status == Status.DELIVERED
    assert final["bounce@simulator.invalid"].status == Status.BOUNCED
    assert final["bounce@simulator.invalid"].bounce_type == "permanent"
    assert final["complaint@simulator.invalid"].status == Status.COMPLAINT
    assert all(m.is_test and m.sent_at for m in final.values())
    events = list(DeliveryEvent.objects.filter(message=final["john@techconnect.bj"]).values_list("event_type", flat=True))
    assert events == ["sent", "delivered"]


def test_a_live_key_delivers(default_templates, smtp_backend, django_capture_on_commit_callbacks):
    client = ApiClient(create_key(make_user("live", SENDERS)))
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post("/api/v1/email/send", INVOICE).status_code == 201
    assert len(smtp_backend.wait_for(1)) == 1
