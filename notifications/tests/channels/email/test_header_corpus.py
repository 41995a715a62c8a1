"""Every header-bearing value, with every character that could break a header or hide what it says.

Each C0 control, DEL, NEL (U+0085), U+2028/2029 and the bidirectional controls, written into
every address field (quoted and unquoted, with and without a colon after the break, as
header injection is written), an attachment's file name, a simple mail's subject and a
variable that ends up in the subject. Each is either a 400 naming the field, with nothing
written, or arrives intact with every header whole: read from what a real SMTP server
received, parsed as a mail client would (`email.policy.default`), with no defect and our
own headers (Date, Message-ID, X-Notification-Id) still in the header block.

The policy tested: addresses and file names refuse all of them; subjects refuse the
controls but keep TAB and the bidirectional controls (right-to-left text needs them), which
arrive encoded and intact.
"""
from __future__ import annotations

import base64
import email
from email import policy

import pytest
from django.core import mail

from notifications.channels.email.backends.errors import classify_delivery_error
from notifications.exceptions import NotificationError, UnsafeHeaderValue
from notifications.access.groups import SENDERS
from notifications.models import Message, SMTPServerConfig
from notifications.channels.email.mime import MimeTemplate, django_email
from notifications.channels.email.sending import send_simple_mail
from notifications.tests.support.api import ApiClient, create_key, make_user
from notifications.tests.support.files import make_pdf
from notifications.tests.support.http import ESPServer, Reply
from notifications.tests.support.payloads import INVOICE_VARS, WELCOME_VARS
from notifications.tests.support.smtp import SMTPServer

pytestmark = pytest.mark.django_db

CONTROLS = [chr(code) for code in range(0x20)] + ["\x7f", "\x85", "\u2028", "\u2029"]
BIDI = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069",
        "\u200e", "\u200f", "\u061c"]
CORPUS = CONTROLS + BIDI
#: What a subject may hold of the corpus (and must deliver intact): whitespace and bidi text.
SUBJECT_KEEPS = {"\t", *BIDI}
PDF = make_pdf("Facture INV-2026-0001")
#: Sound values that are hard on a header: TAB and a right-to-left override in the subject,
#: a quoted local part with a space, an IDN domain, a file name with quotes, spaces and accents.
HARD_SUBJECT_MONTH = "jan\t\u202eINJ: «été»"
HARD_FILENAME = 'facture "été" 2026 — n°1.pdf'
#: Every header our messages carry; anything else in a header block was injected.
OUR_HEADERS = {"content-type", "mime-version", "subject", "from", "to", "cc", "reply-to", "date",
               "message-id", "x-notification-id"}


def code(character: str) -> str:
    return f"U+{ord(character):04X}"


def address_variants(character: str) -> dict[str, str]:
    return {
        "unquoted": f"x{character}INJ@example.com",
        "quoted": f'"x{character}INJ"@example.com',
        "quoted, colon after the break": f'"x{character}X-Injected: yes"@example.com',
    }


@pytest.fixture(scope="module")
def sink():
    """One real SMTP server for the whole module."""
    server = SMTPServer().start()
    yield server
    server.stop()


@pytest.fixture(params=["prebuilt bytes", "built at delivery"])
def delivery(request, settings, sink):
    """Deliver to `sink` through Django's SMTP backend (the bytes built at enqueue are sent as
    they are), or through `DatabaseSMTPBackend` (the message is built by Django at delivery).

    pytest-django swaps the backend for locmem: set explicitly here.
    """
    if request.param == "prebuilt bytes":
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = sink.host, sink.port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    else:
        settings.EMAIL_BACKEND = "notifications.backends.DatabaseSMTPBackend"
        SMTPServerConfig.objects.create(name="sink", host=sink.host, port=sink.port, security="none")
    sink.handler.received.clear()
    return sink


@pytest.fixture
def sender(default_templates):
    return ApiClient(create_key(make_user("billing", SENDERS)))


def refusal_problem(response, field: str, character: str) -> str | None:
    """None when `response` is a 400 naming `field` and the character; else what is wrong."""
    if response.status_code != 400:
        return f"answered {response.status_code}: {response.content[:300]!r}"
    body = response.json()
    if field not in body:
        return f"the 400 does not name {field}: {body}"
    # A NUL may be stopped before our parser, by a guard against text PostgreSQL cannot store.
    if character != "\x00" and code(character) not in str(body[field]):
        return f"the 400 does not name {code(character)}: {body}"
    return None


def assert_arrived_whole(received, row: Message, *, subject: str) -> None:
    """The message as the SMTP server received it: parsed without defects, every header ours
    and whole, ours all there, the subject exactly as sent."""
    raw = received.raw
    parsed = email.message_from_bytes(raw, policy=policy.default)
    head = raw.replace(b"\r\n", b"\n").partition(b"\n\n")[0]
    for line in head.split(b"\n"):
        assert line[:1] in (b" ", b"\t") or line.split(b":")[0].lower().decode() in OUR_HEADERS, head
    assert {name.lower() for name in parsed} <= OUR_HEADERS, parsed.keys()
    for part in parsed.walk():
        assert list(part.defects) == [], part.defects
        for name, value in part.items():
            assert list(value.defects) == [], (name, value, value.defects)
    assert parsed["Subject"] == subject
    assert parsed["To"] == row.address
    assert parsed["Date"] and parsed["Message-ID"] == f"<{row.pk.hex}@rgz.bj>"
    assert parsed["X-Notification-Id"] == str(row.pk)
    assert b"X-Notification-Id: " + str(row.pk).encode() in head


# --- Addresses: every one is refused, naming the field -----------------------------------------

@pytest.mark.parametrize("field", ["to", "cc", "bcc", "reply_to"])
def test_every_address_field_refuses_the_corpus_and_still_delivers_a_good_address_whole(
    sender, delivery, field, django_capture_on_commit_callbacks
):
    problems = []
    for character in CORPUS:
        for variant, address in address_variants(character).items():
            value = address if field == "reply_to" else [address]
            body = {"to": "john@techconnect.bj", "template_key": "onboarding_welcome", "variables": WELCOME_VARS,
                    field: value}
            problem = refusal_problem(sender.post("/api/v1/email/send", body), field, character)
            if problem:
                problems.append(f"{code(character)} {variant}: {problem}")
    assert problems == []
    assert Message.objects.count() == 0

    # The same request with a sound address in the field goes through whole.
    good = "copy@techconnect.bj"
    body = {"to": "john@techconnect.bj" if field != "to" else good, "template_key": "onboarding_welcome",
            "variables": WELCOME_VARS, **({} if field == "to" else {field: good})}
    with django_capture_on_commit_callbacks(execute=True):
        assert sender.post("/api/v1/email/send", body).status_code == 201
    [received] = delivery.wait_for(1)
    row = Message.objects.get()
    assert_arrived_whole(received, row, subject=row.subject)
    if field == "reply_to":
        assert received.message["Reply-To"] == good
    else:
        assert good in received.rcpt_tos
    assert received.message["Cc"] == (good if field == "cc" else None)
    if field == "bcc":
        assert good.encode() not in received.raw  # a blind copy is in the envelope only


def test_a_batch_refuses_each_item_with_a_bad_address_and_sends_the_good_one_whole(
    sender, delivery, django_capture_on_commit_callbacks
):
    # A NUL refuses the whole request before the batch is read (test_input_limits.py): it can
    # never be stored, so it is not one bad item among good ones.
    bad = [(character, variant, address) for character in CORPUS if character != "\x00"
           for variant, address in address_variants(character).items()]
    items = [{"to": "john@techconnect.bj", "variables": WELCOME_VARS}]
    items += [{"to": address, "variables": WELCOME_VARS} for _, _, address in bad]
    with django_capture_on_commit_callbacks(execute=True):
        response = sender.post("/api/v1/email/send-batch", {"template_key": "onboarding_welcome", "items": items})

    assert response.status_code == 201, response.content
    results = {item["index"]: item for item in response.json()["items"]}
    assert "id" in results[0]
    problems = []
    for index, (character, variant, _) in enumerate(bad, start=1):
        errors = results[index].get("errors") or {}
        if "to" not in errors or code(character) not in errors["to"][0]:
            problems.append(f"{code(character)} {variant}: {results[index]}")
    assert problems == []
    [received] = delivery.wait_for(1)
    row = Message.objects.get()
    assert_arrived_whole(received, row, subject=row.subject)
    assert received.rcpt_tos == ["john@techconnect.bj"]


# --- Attachment file names: refused, naming the attachment --------------------------------------

def test_attachment_file_names_refuse_the_corpus_naming_the_attachment(sender):
    problems = []
    for character in CORPUS:
        for filename in (f"inv{character}INJ.pdf", f"inv{character}X-Injected: yes.pdf"):
            attachment = {"filename": filename, "content_type": "application/pdf",
                          "data_base64": base64.b64encode(PDF).decode()}
            body = {"to": "reseller@techconnect.bj", "template_key": "billing_invoice_monthly",
                    "variables": INVOICE_VARS, "attachments": [attachment]}
            response = sender.post("/api/v1/email/send", body)
            problem = refusal_problem(response, "attachments", character)
            if not problem and character != "\x00" and "Attachment 1" not in str(response.json()):
                problem = f"the 400 does not name the attachment's index: {response.json()}"
            if problem:
                problems.append(f"{code(character)} {filename!r}: {problem}")
    assert problems == []
    assert Message.objects.count() == 0


# --- Subjects: controls refused, TAB and bidi text delivered intact -----------------------------

def test_a_variable_in_the_subject_is_refused_or_arrives_intact(
    sender, delivery, django_capture_on_commit_callbacks
):
    problems, delivered = [], {}
    for character in CORPUS:
        month = f"jan{character}X-Injected: yes"
        body = {"to": "reseller@techconnect.bj", "template_key": "billing_invoice_monthly",
                "variables": {**INVOICE_VARS, "month": month}}
        with django_capture_on_commit_callbacks(execute=True):
            response = sender.post("/api/v1/email/send", body)
        if character in SUBJECT_KEEPS:
            if response.status_code != 201:
                problems.append(f"{code(character)}: answered {response.status_code} {response.content[:300]!r}")
            else:
                delivered[response.json()["items"][0]["id"]] = f"Facture RGZ — {month} 2026"
        else:
            # A NUL is refused where it came in, before any rendering: in `variables`.
            problem = refusal_problem(response, "variables" if character == "\x00" else "subject", character)
            if problem:
                problems.append(f"{code(character)}: {problem}")
    assert problems == []
    assert_delivered_intact(delivery, delivered)


def test_a_simple_mails_subject_is_refused_or_arrives_intact(delivery, django_capture_on_commit_callbacks):
    problems, delivered = [], {}
    for character in CORPUS:
        subject = f"Export{character}X-Injected: yes"
        try:
            with django_capture_on_commit_callbacks(execute=True):
                [message] = send_simple_mail("ops@rgz.bj", subject, "Le rapport est prêt.")
        except NotificationError as exc:
            if character in SUBJECT_KEEPS or exc.field != "subject" or exc.status_code != 400 \
                    or code(character) not in exc.message:
                problems.append(f"{code(character)}: {exc.field} {exc.status_code} {exc.message}")
            continue
        if character not in SUBJECT_KEEPS:
            problems.append(f"{code(character)}: accepted")
        delivered[str(message.pk)] = subject
    assert problems == []
    assert_delivered_intact(delivery, delivered)


def assert_delivered_intact(sink: SMTPServer, subjects: dict[str, str]) -> None:
    """Each accepted message (id → subject) arrived once, whole, with its subject intact."""
    assert set(subjects) and mail.outbox == []
    received = {message.message["X-Notification-Id"]: message for message in sink.wait_for(len(subjects))}
    assert set(received) == set(subjects)
    for row in Message.objects.filter(pk__in=subjects):
        assert row.status == "sent", row.error_message
        assert_arrived_whole(received[str(row.pk)], row, subject=subjects[str(row.pk)])


def test_sound_but_unusual_values_arrive_whole_over_smtp(sender, delivery, django_capture_on_commit_callbacks):
    body = {
        "to": ['"john doe"@techconnect.bj'], "cc": ["compta@exämple.bj"], "reply_to": '"support desk"@rgz.bj',
        "template_key": "billing_invoice_monthly", "variables": {**INVOICE_VARS, "month": HARD_SUBJECT_MONTH},
        "attachments": [{"filename": HARD_FILENAME, "content_type": "application/pdf",
                         "data_base64": base64.b64encode(PDF).decode()}],
    }
    with django_capture_on_commit_callbacks(execute=True):
        assert sender.post("/api/v1/email/send", body).status_code == 201
    [received] = delivery.wait_for(1)
    row = Message.objects.get()
    assert_arrived_whole(received, row, subject=f"Facture RGZ — {HARD_SUBJECT_MONTH} 2026")
    assert received.rcpt_tos == ['"john doe"@techconnect.bj', "compta@xn--exmple-cua.bj"]
    assert received.message["Reply-To"] == '"support desk"@rgz.bj'
    [attachment] = received.message.iter_attachments()
    assert attachment.get_filename() == HARD_FILENAME and attachment.get_content() == PDF


# --- One pass through an ESP's API (anymail), pointed at a local HTTP server -------------------

@pytest.fixture
def esp(settings, request):
    server = ESPServer().start()
    if request.param == "amazon_ses":
        settings.EMAIL_BACKEND = "anymail.backends.amazon_ses.EmailBackend"
        settings.ANYMAIL = {"AMAZON_SES_CLIENT_PARAMS": {
            "endpoint_url": server.url, "region_name": "eu-west-1", "aws_access_key_id": "AKIDTESTTESTTEST",
            "aws_secret_access_key": "test-secret", "config": {"retries": {"total_max_attempts": 1}},
        }}
        server.reply = Reply(status=200, body={"MessageId": "0102019a-test"})
    else:
        settings.EMAIL_BACKEND = "anymail.backends.sendgrid.EmailBackend"
        settings.ANYMAIL = {"SENDGRID_API_KEY": "SG.test-key", "SENDGRID_API_URL": f"{server.url}/v3/"}
        server.reply = Reply(status=202, body=b"")
    server.name = request.param
    yield server
    server.stop()


@pytest.mark.parametrize("esp", ["amazon_ses", "sendgrid"], indirect=True)
def test_through_anymail_the_payloads_headers_and_file_names_are_whole(
    sender, esp, django_capture_on_commit_callbacks
):
    body = {
        "to": ['"john doe"@techconnect.bj'], "cc": ["compta@exämple.bj"], "reply_to": '"support desk"@rgz.bj',
        "template_key": "billing_invoice_monthly", "variables": {**INVOICE_VARS, "month": HARD_SUBJECT_MONTH},
        "attachments": [{"filename": HARD_FILENAME, "content_type": "application/pdf",
                         "data_base64": base64.b64encode(PDF).decode()}],
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = sender.post("/api/v1/email/send", body)
    assert response.status_code == 201, response.content
    row = Message.objects.get()
    assert row.status == "sent", row.error_message
    subject = f"Facture RGZ — {HARD_SUBJECT_MONTH} 2026"
    [request] = esp.requests
    payload = request.json()

    if esp.name == "amazon_ses":
        raw = base64.b64decode(payload["Content"]["Raw"]["Data"])
        parsed = email.message_from_bytes(raw, policy=policy.default)
        for part in parsed.walk():
            assert list(part.defects) == [], part.defects
            for name, value in part.items():
                assert list(value.defects) == [], (name, value, value.defects)
        assert parsed["Subject"] == subject
        assert parsed["To"] == '"john doe"@techconnect.bj'
        assert parsed["Cc"].addresses[0].domain in ("exämple.bj", "xn--exmple-cua.bj")
        assert parsed["Reply-To"] == '"support desk"@rgz.bj'
        assert parsed["Message-ID"] == f"<{row.pk.hex}@rgz.bj>" and parsed["X-Notification-Id"] == str(row.pk)
        [attachment] = parsed.iter_attachments()
        assert attachment.get_filename() == HARD_FILENAME and attachment.get_content() == PDF
    else:
        assert payload["subject"] == subject
        [personalization] = payload["personalizations"]
        assert personalization["to"] == [{"email": '"john doe"@techconnect.bj'}]
        assert [cc["email"] for cc in personalization["cc"]] in (["compta@exämple.bj"], ["compta@xn--exmple-cua.bj"])
        assert payload["reply_to_list"] == [{"email": '"support desk"@rgz.bj'}]
        assert payload["headers"]["X-Notification-Id"] == str(row.pk)
        for name, value in payload["headers"].items():
            assert not any(character in f"{name}{value}" for character in CONTROLS + BIDI), (name, value)
        [attachment] = payload["attachments"]
        assert attachment["filename"] == HARD_FILENAME and base64.b64decode(attachment["content"]) == PDF


# --- The last guard: whatever reaches the build of a message -----------------------------------

def build(**changes):
    values = {"subject": "Facture", "html": "<p>x</p>", "text": "x", "from_email": "RGZ <noreply@rgz.bj>",
              "to": ["a@rgz.bj"], "headers": {"Message-ID": "<1@rgz.bj>", "X-Notification-Id": "1",
                                               "Date": "Wed, 02 Dec 2026 02:00:00 +0000"}}
    return django_email(**{**values, **changes})


@pytest.mark.parametrize("changes, field", [
    ({"subject": "Facture\x0bX-Injected: yes"}, "subject"),
    ({"to": ['"x\x0bINJ"@example.com']}, "to"),
    ({"cc": ["x\x85INJ@example.com"]}, "cc"),
    ({"bcc": ["x\u2028INJ@example.com"]}, "bcc"),
    ({"reply_to": ["x\u202eINJ@example.com"]}, "reply_to"),
    ({"from_email": "RGZ\x1c <noreply@rgz.bj>"}, "from_email"),
    ({"headers": {"Message-ID": "<1@rgz.bj>\x0bX-Injected: yes", "X-Notification-Id": "1", "Date": "x"}},
     "Message-ID"),
    ({"attachments": [("inv\x0bINJ.pdf", PDF, "application/pdf")]}, "attachments"),
])
def test_the_build_of_any_backends_message_refuses_what_could_break_a_header(changes, field):
    """Rows stored before these checks, or a path that forgot one, still cannot break a header:
    the message is not built (a permanent delivery failure), for our bytes, Django's and anymail's."""
    with pytest.raises(UnsafeHeaderValue) as refused:
        build(**changes)
    assert refused.value.field == field
    assert str(classify_delivery_error(refused.value)).startswith("permanent: the message cannot be built")


def test_a_prebuilt_messages_per_recipient_headers_are_checked_too():
    template = MimeTemplate.of(build(headers={"To": "a@rgz.bj", "Date": "Wed, 02 Dec 2026 02:00:00 +0000",
                                              "Message-ID": "<1@rgz.bj>", "X-Notification-Id": "1"}))
    headers = {"To": "b@rgz.bj", "Date": "Wed, 02 Dec 2026 02:00:00 +0000", "Message-ID": "<2@rgz.bj>",
               "X-Notification-Id": "2"}
    assert b"To: b@rgz.bj\r\n" in template.for_recipient(headers)
    with pytest.raises(UnsafeHeaderValue) as refused:
        template.for_recipient({**headers, "To": '"b\x0bX-Injected: yes"@rgz.bj'})
    assert refused.value.field == "To"
