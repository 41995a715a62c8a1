"""One address parser for every address field: what it accepts, what it refuses, and that
every entry point (API send and send-batch, the service, templates' extra recipients, SMTP
servers' sender, the sender settings) refuses with a 400 naming the field, writing nothing."""
from __future__ import annotations


import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.urls import reverse

from notifications.checks import check_sender_settings
from notifications.exceptions import InvalidRecipient
from notifications.access.groups import SENDERS
from notifications.models import Message, EmailTemplate, SMTPServerConfig
from notifications.channels.email.addresses import parse_address, parse_addresses
from notifications.channels.email.sending import send_mail_template
from notifications.tests.support.api import ApiClient, create_key, make_user
from notifications.tests.support.payloads import WELCOME_VARS
from notifications.tests.support.admin_forms import template_form

LOCAL_64 = "l" * 64
#: 254 characters in all: the longest address RFC 5321 allows.
LONGEST = LOCAL_64 + "@" + ".".join(["d" * 63, "d" * 63, "d" * 58]) + ".bj"
TOO_LONG = "a@" + ".".join(["d" * 63] * 4) + ".bj"  # 260 characters, each label valid
assert len(LONGEST) == 254 and len(TOO_LONG) == 260


@pytest.mark.parametrize("address", [
    "john@techconnect.bj",
    "john.doe+billing@techconnect.bj",
    "noc@localhost",
    "a@exämple.bj",  # IDN domains, as before
    '"john doe"@example.com',  # a quoted local part holding a space
    '"a@b"@example.com',
    '"john\\"doe"@example.com',  # a quoted pair
    "x@[127.0.0.1]",  # an address literal
    LOCAL_64 + "@rgz.bj",
    LONGEST,
])
def test_mailboxes_rfc_5321_allows_are_accepted(address):
    assert parse_address(address, field="to") == address
    assert parse_addresses(f"  {address} ", field="to") == [address]


@pytest.mark.parametrize("address, says", [
    ("l" * 65 + "@rgz.bj", "the part before @ is 65 characters long; at most 64"),
    ('""@example.com', "the part before @ is empty"),
    ("@example.com", "the part before @ is empty"),
    (TOO_LONG, "it is 260 characters long; at most 254"),
    # 220 characters as written, 276 once the domain is in the ASCII form RCPT TO carries.
    ("a@" + ".".join(["абвгдежзийклмнопрстуфхцчшщ"] * 8) + ".bj", "with its domain in ASCII (IDNA) form"),
    ("not-an-address", "not a valid email address"),
    ("a@b@", "not a valid email address"),
    ("John <john@rgz.bj>", "not a valid email address"),
    ('"x\x0bINJ"@example.com', "U+000B (a control character)"),
    ("x\x0bINJ@example.com", "U+000B (a control character)"),
    ("\x0bjohn@rgz.bj", "U+000B (a control character)"),  # never stripped away quietly
    ("john@rgz.bj\u2028", "U+2028 (a control character)"),
    ('"\u202emoc.lave"@example.com', "U+202E (a bidirectional control character)"),
])
def test_what_could_break_a_header_or_a_command_is_refused_saying_why(address, says):
    with pytest.raises(InvalidRecipient) as refused:
        parse_address(address, field="reply_to")
    assert refused.value.field == "reply_to"
    assert says in refused.value.message, refused.value.message


def test_every_bad_address_is_named_with_its_position():
    with pytest.raises(InvalidRecipient) as refused:
        parse_addresses(["a@rgz.bj", "x\x0bINJ@rgz.bj", "b@rgz.bj", '""@rgz.bj', 5], field="cc")
    message = refused.value.message
    assert refused.value.field == "cc"
    assert "Invalid email address 2 ('x\\x0bINJ@rgz.bj'): it holds U+000B" in message
    assert "Invalid email address 4 ('\"\"@rgz.bj'): the part before @ is empty" in message
    assert "Address 5 must be a string; got int." in message
    assert "a@rgz.bj" not in message and "b@rgz.bj" not in message


# --- The API and the service: a 400 naming the field, nothing written -------------------------

@pytest.fixture
def sender(default_templates):
    return ApiClient(create_key(make_user("billing", SENDERS)))


def welcome(**changes) -> dict:
    return {"to": "john@techconnect.bj", "template_key": "onboarding_welcome", "variables": WELCOME_VARS, **changes}


BAD_ADDRESSES = {
    # The old 500: a line break inside quotes, a colon after it.
    "break_then_colon": '"x\x0bX-Injected: yes"@example.com',
    "nel_then_colon": '"x\x85Bcc: victim@example.com"@example.com',
    "local_part_65": "l" * 65 + "@example.com",
    "empty_quoted_local_part": '""@example.com',
    "address_260": TOO_LONG,
}


@pytest.mark.parametrize("field", ["to", "cc", "bcc", "reply_to"])
@pytest.mark.parametrize("address", BAD_ADDRESSES.values(), ids=BAD_ADDRESSES.keys())
def test_a_bad_address_in_any_field_is_a_400_naming_it_and_nothing_is_written(sender, field, address):
    value = address if field == "reply_to" else ["ok@rgz.bj", address] if field != "to" else [address]
    response = sender.post("/api/v1/email/send", welcome(**{field: value}))

    assert response.status_code == 400, response.content
    assert list(response.json()) == [field, "codes"], response.json()
    assert response.json()["codes"] == {field: ["invalid_address"]}
    [message] = response.json()[field]
    assert "Invalid email address" in message
    if field in ("cc", "bcc"):
        assert "address 2 " in message  # its position in the list
    assert Message.objects.count() == 0 and mail.outbox == []


def test_the_service_refuses_the_same_addresses_naming_the_field(default_templates):
    for field in ("to", "cc", "bcc", "reply_to"):
        for address in BAD_ADDRESSES.values():
            arguments = {"to": "john@techconnect.bj", field: address}
            with pytest.raises(InvalidRecipient) as refused:
                send_mail_template("onboarding_welcome", variables=WELCOME_VARS, **arguments)
            assert refused.value.field == field
    assert Message.objects.count() == 0


def test_in_a_batch_a_bad_address_refuses_its_item_only(sender, django_capture_on_commit_callbacks):
    items = [{"to": "a@techconnect.bj", "variables": WELCOME_VARS},
             {"to": ["b@techconnect.bj", '"x\x0bX-Injected: yes"@example.com'], "variables": WELCOME_VARS},
             {"to": TOO_LONG, "variables": WELCOME_VARS},
             {"to": "c@techconnect.bj", "variables": WELCOME_VARS}]
    with django_capture_on_commit_callbacks(execute=True):
        response = sender.post("/api/v1/email/send-batch", {"template_key": "onboarding_welcome", "items": items})

    assert response.status_code == 201, response.content
    by_index = {item["index"]: item for item in response.json()["items"]}
    assert by_index[0]["to"] == "a@techconnect.bj" and by_index[3]["to"] == "c@techconnect.bj"
    assert "Invalid email address 2 " in by_index[1]["errors"]["to"][0]
    assert "U+000B" in by_index[1]["errors"]["to"][0]
    assert "260 characters long" in by_index[2]["errors"]["to"][0]
    assert sorted(Message.objects.values_list("address", flat=True)) == [
        "a@techconnect.bj", "c@techconnect.bj"]


def test_a_batch_whose_every_item_has_a_bad_address_writes_nothing(sender):
    items = [{"to": address, "variables": WELCOME_VARS} for address in BAD_ADDRESSES.values()]
    response = sender.post("/api/v1/email/send-batch", {"template_key": "onboarding_welcome", "items": items})
    assert response.status_code == 400
    assert [sorted(item["errors"]) for item in response.json()["items"]] == [["to"]] * len(items)
    assert Message.objects.count() == 0


# --- Addresses configured rather than sent: extra recipients, SMTP servers, settings ----------

@pytest.mark.parametrize("address", ['"x\x0bINJ"@example.com', "l" * 65 + "@rgz.bj", '""@rgz.bj'])
def test_a_templates_extra_recipients_go_through_the_same_parser(admin_client, default_templates, address):
    template = EmailTemplate.objects.get(key="incident_alert_critical")
    template.extra_recipients = ["noc@rgz.bj", address]
    with pytest.raises(ValidationError) as refused:
        template.full_clean()  # what the fixtures' loader (create_template) and the admin call
    assert "Invalid email address 2" in refused.value.message_dict["extra_recipients"][0]

    template.refresh_from_db()
    url = reverse("admin:notifications_emailtemplate_change", args=[template.pk])
    response = admin_client.post(url, template_form(template, extra_recipients=["noc@rgz.bj", address]))
    assert response.status_code == 200
    assert "Invalid email address 2" in response.context["adminform"].form.errors["extra_recipients"][0]
    assert EmailTemplate.objects.get(pk=template.pk).extra_recipients == template.extra_recipients


def test_an_smtp_servers_sender_goes_through_the_same_parser(admin_client):
    form = {"name": "primary", "order": 1, "is_active": "on", "host": "smtp.rgz.bj", "port": 587,
            "security": "starttls", "timeout_seconds": 30, "username": "", "password": "",
            "from_email": '"x\x0bINJ"@rgz.bj'}
    response = admin_client.post(reverse("admin:notifications_smtpserverconfig_add"), form)
    assert response.status_code == 200
    assert "U+000B" in " ".join(response.context["adminform"].form.errors["from_email"])
    assert not SMTPServerConfig.objects.exists()

    config = SMTPServerConfig(name="p", host="smtp.rgz.bj", from_email="l" * 65 + "@rgz.bj")
    with pytest.raises(ValidationError) as refused:
        config.full_clean()
    assert "at most 64" in refused.value.message_dict["from_email"][0]


def test_the_sender_settings_are_checked_at_start(settings):
    assert check_sender_settings() == []
    settings.SMTP_FROM_EMAIL = '"x\x0bINJ"@rgz.bj'
    settings.SMTP_REPLY_TO = "l" * 65 + "@rgz.bj"
    settings.SMTP_FROM_NAME = "RGZ\r\nBcc: victim@example.com"
    errors = check_sender_settings()
    assert [error.id for error in errors] == ["notifications.E020", "notifications.E020", "notifications.E021"]
    assert errors[0].msg.startswith("SMTP_FROM_EMAIL: ") and "U+000B" in errors[0].msg
    assert errors[1].msg.startswith("SMTP_REPLY_TO: ") and "at most 64" in errors[1].msg
    assert errors[2].msg.startswith("SMTP_FROM_NAME: ") and "U+000D" in errors[2].msg
