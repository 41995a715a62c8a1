"""Test sends go to test addresses only, on every route (issue 16, finding 1).

A Template editor holds no `send_email` permission: the API's test route once mailed the
editor's freshly PUT content to any address. These tests go through the route as a client
reaches it, with delivery through a real SMTP server.
"""
from __future__ import annotations

import pytest

from notifications.exceptions import InvalidRecipient
from notifications.access.groups import TEMPLATE_EDITORS
from notifications.models import Message
from notifications.authoring.testing import allowed_test_recipient
from notifications.tests.support.api import ApiClient, create_key, make_user
from notifications.tests.support.payloads import TEST_RENDER

pytestmark = pytest.mark.django_db

ROUTE = "/api/v1/email/templates/billing_invoice_monthly/test"
HOSTILE_VERSION = {
    "subject": "{{ reseller_name }}: your account is locked",
    "html_content": "<p>{{ month }} {{ year }} {{ amount_fcfa }} {{ invoice_number }} {{ invoice_date }} {{ link_portal }}: "
                    "log in at https://evil.test now</p>",
}


@pytest.fixture
def editor(default_templates, settings):
    settings.EMAIL_TEST_RECIPIENTS = ["qa@rgz.bj", "@test.rgz.bj"]
    user = make_user("editor", TEMPLATE_EDITORS)
    user.email = "editor@rgz.bj"
    user.save()
    return ApiClient(create_key(user))


@pytest.mark.parametrize("to", [
    "victim1@evil.test",
    ["victim1@evil.test", "victim2@evil.test"],
    ["qa@rgz.bj", "victim2@evil.test"],  # one refused address refuses the whole request
    "someone@sub.test.rgz.bj",           # a subdomain of an allowed @domain is another domain
])
def test_the_editors_key_cannot_send_a_test_to_an_address_not_allowed(
    editor, smtp_backend, smtp_server, django_capture_on_commit_callbacks, to
):
    assert editor.put("/api/v1/email/templates/billing_invoice_monthly", HOSTILE_VERSION).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = editor.post(ROUTE, {**TEST_RENDER, "to": to})
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["codes"]["to"] == ["test_recipient_not_allowed"]
    assert "EMAIL_TEST_RECIPIENTS" in body["to"][0]
    assert not Message.objects.exists()
    assert smtp_server.received == []


@pytest.mark.parametrize("to", ["qa@rgz.bj", "editor@rgz.bj", "QA@rgz.bj", "anyone@test.rgz.bj"])
def test_an_allowed_address_or_the_editors_own_still_gets_the_test(
    editor, smtp_backend, smtp_server, django_capture_on_commit_callbacks, to
):
    with django_capture_on_commit_callbacks(execute=True):
        response = editor.post(ROUTE, {**TEST_RENDER, "to": to})
    assert response.status_code == 200, response.content
    [received] = smtp_server.wait_for(1)
    assert [address.lower() for address in received.rcpt_tos] == [to.lower()]
    message = Message.objects.get(pk=response.json()["id"])
    assert (message.source_endpoint, message.sent_by.username) == ("api-test", "editor")


def test_the_api_and_the_admin_refuse_the_same_address_with_the_same_code(editor, settings):
    user = make_user("other-editor", TEMPLATE_EDITORS)
    with pytest.raises(InvalidRecipient) as refused:
        allowed_test_recipient(address="victim1@evil.test", user=user)
    assert refused.value.code == "test_recipient_not_allowed"
    assert editor.post(ROUTE, {**TEST_RENDER, "to": "victim1@evil.test"}).json()["codes"]["to"] == [refused.value.code]
