"""Inbound email through anymail's inbound webhooks: stored as an `InboundEmail`, then
`email_received` sent with it; read by Auditors in the admin, its HTML sandboxed.

Each payload follows the provider's documentation page named in its test."""
from __future__ import annotations

import base64
import hashlib
import json
import logging
from email.message import EmailMessage as MIMEMessage
from email.utils import format_datetime
from datetime import UTC, datetime
from io import BytesIO

import pytest
from django.test import Client

from notifications.access.groups import AUDITORS, SENDERS
from notifications.models import AttachmentBlob, InboundAttachment, InboundEmail
from notifications.channels.email.sending import send_mail_template
from notifications.signals import email_received
from notifications.tests.support.api import make_user
from notifications.tests.support.files import make_pdf, make_png
from notifications.tests.support.payloads import INVOICE_VARS

pytestmark = pytest.mark.django_db

SECRET = "inbound-hook:9f1c2b7e44"
AUTH = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(SECRET.encode()).decode()}
PDF = make_pdf("Bon de commande BC-2026-114")
PNG = make_png()


@pytest.fixture(autouse=True)
def webhook_secret(settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": SECRET}
    settings.WEBHOOK_PROVIDERS = ["amazon_ses", "sendgrid"]  # inbound mail alone: no sending through them


class Heard(list):
    def __call__(self, sender, *, email, **kwargs):
        self.append(email)


@pytest.fixture
def heard():
    receiver = Heard()
    email_received.connect(receiver)
    yield receiver
    email_received.disconnect(receiver)


# --- SendGrid Inbound Parse ------------------------------------------------------------------

def sendgrid_parse_payload() -> dict:
    """The default (not raw) Inbound Parse POST, multipart/form-data with two files: the
    parameters of https://www.twilio.com/docs/sendgrid/for-developers/parsing-email/setting-up-the-inbound-parse-webhook
    ("Default parameters": headers, dkim, content-ids, to, from, html, text, sender_ip,
    spam_report, envelope, attachments, subject, spam_score, attachment-info, charsets, SPF)."""
    pdf = BytesIO(PDF)
    pdf.name = "BC-2026-114.pdf"
    png = BytesIO(PNG)
    png.name = "logo.png"
    return {
        "headers": (
            "Received: from mail.techconnect.bj by mx.sendgrid.net with SMTP id abc123\n"
            "MIME-Version: 1.0\n"
            'From: "Tech Connect SA" <achats@techconnect.bj>\n'
            "Date: Mon, 23 Feb 2026 09:12:44 +0100\n"
            "Message-ID: <BC-2026-114@mail.techconnect.bj>\n"
            "Subject: Bon de commande BC-2026-114\n"
            "To: support@reply.rgz.bj\n"
            "Cc: compta@techconnect.bj\n"
            'Content-Type: multipart/mixed; boundary="000000000000a1b2c3"\n'
        ),
        "dkim": "{@techconnect.bj : pass}",
        "content-ids": json.dumps({"logo-1": "attachment2"}),
        "to": "support@reply.rgz.bj",
        "cc": "compta@techconnect.bj",
        "from": '"Tech Connect SA" <achats@techconnect.bj>',
        "text": "Bonjour,\nVeuillez trouver notre bon de commande.\n",
        "html": '<p>Bonjour,</p><p>Veuillez trouver notre bon de commande.</p><img src="cid:logo-1">'
                "<script>alert('x')</script>",
        "sender_ip": "196.192.16.4",
        "spam_report": "Spam detection software, running on the system \"mx.sendgrid.net\" ...",
        "envelope": json.dumps({"to": ["support@reply.rgz.bj"], "from": "achats@techconnect.bj"}),
        "attachments": "2",
        "subject": "Bon de commande BC-2026-114",
        "spam_score": "0.3",
        "attachment-info": json.dumps({
            "attachment1": {"filename": "BC-2026-114.pdf", "name": "BC-2026-114.pdf", "type": "application/pdf"},
            "attachment2": {"filename": "logo.png", "name": "logo.png", "type": "image/png", "content-id": "logo-1"},
        }),
        "charsets": json.dumps({"to": "UTF-8", "cc": "UTF-8", "html": "UTF-8", "subject": "UTF-8", "from": "UTF-8",
                                "text": "UTF-8"}),
        "SPF": "pass",
        "attachment1": pdf,
        "attachment2": png,
    }


def test_sendgrid_inbound_parse_with_an_attachment_is_stored_then_announced(
    client, heard, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/anymail/sendgrid/inbound/", data=sendgrid_parse_payload(), **AUTH)
    assert response.status_code == 200, response.content

    email = InboundEmail.objects.get()
    assert heard == [email]
    assert email.provider == "SendGrid"
    assert email.from_email == "Tech Connect SA <achats@techconnect.bj>"
    assert email.to == ["support@reply.rgz.bj"] and email.cc == ["compta@techconnect.bj"]
    assert (email.envelope_sender, email.envelope_recipient) == ("achats@techconnect.bj", "support@reply.rgz.bj")
    assert email.subject == "Bon de commande BC-2026-114"
    assert email.text == "Bonjour,\nVeuillez trouver notre bon de commande.\n"
    assert email.html.startswith("<p>Bonjour,</p>")
    assert email.spam_score == 0.3 and email.spam_detected is None
    assert email.provider_message_id == "<BC-2026-114@mail.techconnect.bj>"
    assert ["Cc", "compta@techconnect.bj"] in email.headers
    assert email.raw_size > len(PDF)
    stored = {a.filename: a for a in email.attachments.all()}
    assert set(stored) == {"BC-2026-114.pdf", "logo.png"}
    pdf = stored["BC-2026-114.pdf"]
    assert (pdf.content_type, pdf.size_bytes, pdf.content_id) == ("application/pdf", len(PDF), "")
    assert bytes(pdf.blob.data) == PDF and pdf.sha256 == hashlib.sha256(PDF).hexdigest()
    assert stored["logo.png"].content_id == "logo-1" and bytes(stored["logo.png"].blob.data) == PNG


def test_an_attachment_already_stored_is_not_stored_twice(client, default_templates,
                                                         django_capture_on_commit_callbacks, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    send_mail_template("billing_invoice_monthly", "achats@techconnect.bj", INVOICE_VARS,
                       attachments=[("BC.pdf", PDF, "application/pdf")])
    assert AttachmentBlob.objects.count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(2):
            assert client.post("/anymail/sendgrid/inbound/", data=sendgrid_parse_payload(), **AUTH).status_code == 200
    assert InboundEmail.objects.count() == 2 and InboundAttachment.objects.count() == 4
    assert AttachmentBlob.objects.count() == 2  # the PDF (shared with the invoice) and the logo


@pytest.mark.parametrize("headers", [{}, {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"x:wrong").decode()}])
def test_an_inbound_post_without_the_secret_stores_nothing(client, heard, headers,
                                                           django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/anymail/sendgrid/inbound/", data=sendgrid_parse_payload(), **headers)
    assert 400 <= response.status_code < 500
    assert not InboundEmail.objects.exists() and heard == []


def test_an_email_received_receiver_that_raises_loses_nothing_and_the_next_still_runs(
    client, heard, caplog, django_capture_on_commit_callbacks
):
    def filtering_receiver(sender, *, email, **kwargs):
        raise ValueError("cannot parse the ticket number")

    email_received.connect(filtering_receiver)  # connected before `heard`'s second receiver below
    after = Heard()
    email_received.connect(after)
    try:
        with caplog.at_level(logging.ERROR), django_capture_on_commit_callbacks(execute=True):
            response = client.post("/anymail/sendgrid/inbound/", data=sendgrid_parse_payload(), **AUTH)
    finally:
        email_received.disconnect(filtering_receiver)
        email_received.disconnect(after)

    assert response.status_code == 200
    email = InboundEmail.objects.get()
    assert heard == [email] and after == [email]
    assert "cannot parse the ticket number" in caplog.text and str(email.pk) in caplog.text


def test_text_that_cannot_be_stored_is_cleaned_not_refused(client, django_capture_on_commit_callbacks):
    payload = {**sendgrid_parse_payload(), "text": "ligne 1\x00ligne 2"}
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post("/anymail/sendgrid/inbound/", data=payload, **AUTH).status_code == 200
    assert InboundEmail.objects.get().text == "ligne 1ligne 2"


# --- Amazon SES receipt through SNS -----------------------------------------------------------

def ses_mime() -> bytes:
    message = MIMEMessage()
    message["From"] = "Marie Dossou <marie.dossou@isp-benin.bj>"
    message["To"] = "support@reply.rgz.bj"
    message["Subject"] = "Re: Incident INC-2026-000847"
    message["Date"] = format_datetime(datetime(2026, 2, 21, 15, 2, 11, tzinfo=UTC))
    message["Message-ID"] = "<0102018d-reply@isp-benin.bj>"
    message.set_content("Le site de Cotonou est revenu.\n")
    message.add_alternative("<p>Le site de Cotonou est <b>revenu</b>.</p>", subtype="html")
    message.add_attachment(PDF, maintype="application", subtype="pdf", filename="rapport.pdf")
    return message.as_bytes()


def ses_receipt_notification(*, encoding: str = "UTF8", spam: str = "PASS") -> dict:
    """An SES receipt notification for an SNS action (content included), as in
    https://docs.aws.amazon.com/ses/latest/dg/receiving-email-notifications-contents.html and
    https://docs.aws.amazon.com/ses/latest/dg/receiving-email-notifications-examples.html,
    wrapped in the SNS HTTP/S notification of
    https://docs.aws.amazon.com/sns/latest/dg/sns-message-and-json-formats.html."""
    raw = ses_mime()
    content = base64.b64encode(raw).decode() if encoding == "BASE64" else raw.decode()
    ses = {
        "notificationType": "Received",
        "mail": {
            "timestamp": "2026-02-21T15:02:12.936Z",
            "source": "marie.dossou@isp-benin.bj",
            "messageId": "o3vrnil0e2ic28trm7dfhrc2v0clambda4nbp0g1",
            "destination": ["support@reply.rgz.bj"],
            "headersTruncated": False,
            "headers": [{"name": "From", "value": "Marie Dossou <marie.dossou@isp-benin.bj>"},
                        {"name": "To", "value": "support@reply.rgz.bj"}],
            "commonHeaders": {"from": ["Marie Dossou <marie.dossou@isp-benin.bj>"], "to": ["support@reply.rgz.bj"],
                              "subject": "Re: Incident INC-2026-000847"},
        },
        "receipt": {
            "timestamp": "2026-02-21T15:02:12.936Z",
            "processingTimeMillis": 406,
            "recipients": ["support@reply.rgz.bj"],
            "spamVerdict": {"status": spam},
            "virusVerdict": {"status": "PASS"},
            "spfVerdict": {"status": "PASS"},
            "dkimVerdict": {"status": "PASS"},
            "dmarcVerdict": {"status": "PASS"},
            "action": {"type": "SNS", "topicArn": "arn:aws:sns:eu-west-1:123456789012:rgz-inbound",
                       "encoding": encoding},
        },
        "content": content,
    }
    return {
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": "arn:aws:sns:eu-west-1:123456789012:rgz-inbound",
        "Subject": "Amazon SES Email Receipt Notification",
        "Message": json.dumps(ses),
        "Timestamp": "2026-02-21T15:02:13.355Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLEpH+...",
        "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem",
        "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn:aws:sns:"
                          "eu-west-1:123456789012:rgz-inbound:c9135db0-26c4-47ec-8998-413945fb5a96",
    }


INBOUND_TOPIC = "arn:aws:sns:eu-west-1:123456789012:rgz-inbound"


@pytest.fixture(autouse=True)
def signer(settings, tmp_path):
    """SNS messages are verified on the inbound route too: this test's own signing key, and
    the inbound topic among those accepted (tests/support/sns.py)."""
    from notifications.tests.support.sns import signing

    with signing(settings, tmp_path, topics=[INBOUND_TOPIC]) as signer:
        yield signer


def post_sns(client, body: dict, signer):
    body = signer.sign(body, version=int(body["SignatureVersion"]))
    return client.post("/anymail/amazon_ses/inbound/", data=json.dumps(body), content_type="text/plain",
                       HTTP_X_AMZ_SNS_MESSAGE_TYPE=body["Type"], HTTP_X_AMZ_SNS_MESSAGE_ID=body["MessageId"], **AUTH)


@pytest.mark.parametrize("encoding", ["UTF8", "BASE64"])
def test_ses_inbound_through_sns_is_stored_then_announced(client, heard, encoding, signer,
                                                          django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = post_sns(client, ses_receipt_notification(encoding=encoding, spam="FAIL"), signer)
    assert response.status_code == 200, response.content

    email = InboundEmail.objects.get()
    assert heard == [email]
    assert email.provider == "Amazon SES"
    assert email.provider_message_id == "o3vrnil0e2ic28trm7dfhrc2v0clambda4nbp0g1"
    assert email.received_at == datetime(2026, 2, 21, 15, 2, 12, 936000, tzinfo=UTC)
    assert email.from_email == "Marie Dossou <marie.dossou@isp-benin.bj>"
    assert email.envelope_sender == "marie.dossou@isp-benin.bj"
    assert email.envelope_recipient == "support@reply.rgz.bj" and email.to == ["support@reply.rgz.bj"]
    assert email.subject == "Re: Incident INC-2026-000847"
    assert email.text == "Le site de Cotonou est revenu.\n"
    assert email.html.strip() == "<p>Le site de Cotonou est <b>revenu</b>.</p>"
    assert email.spam_detected is True and email.spam_score is None
    assert email.raw_size == pytest.approx(len(ses_mime()), rel=0.05)
    [attachment] = email.attachments.all()
    assert (attachment.filename, attachment.content_type) == ("rapport.pdf", "application/pdf")
    assert bytes(attachment.blob.data) == PDF


def test_ses_inbound_without_the_secret_stores_nothing(client, heard, django_capture_on_commit_callbacks):
    body = ses_receipt_notification()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/anymail/amazon_ses/inbound/", data=json.dumps(body), content_type="text/plain",
                               HTTP_X_AMZ_SNS_MESSAGE_TYPE="Notification", HTTP_X_AMZ_SNS_MESSAGE_ID=body["MessageId"])
    assert response.status_code == 401  # SNS sends its basic auth only after a 401
    assert not InboundEmail.objects.exists() and heard == []


# --- the admin: Auditors list, search and read; the HTML only sandboxed --------------------------

def staff_client(username: str, *groups: str) -> Client:
    user = make_user(username, *groups)
    user.is_staff = True
    user.save()
    client = Client()
    client.force_login(user)
    return client


def test_auditors_list_search_and_read_inbound_mail_with_the_html_sandboxed(
    client, signer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/anymail/sendgrid/inbound/", data=sendgrid_parse_payload(), **AUTH)
        post_sns(client, ses_receipt_notification(), signer)
    auditor = staff_client("reader", AUDITORS)

    listing = auditor.get("/admin/notifications/inboundemail/")
    assert listing.status_code == 200
    assert "Bon de commande BC-2026-114" in listing.content.decode()
    found = auditor.get("/admin/notifications/inboundemail/", {"q": "Cotonou"}).content.decode()
    assert "Re: Incident INC-2026-000847" in found and "Bon de commande" not in found

    email = InboundEmail.objects.get(provider="SendGrid")
    page = auditor.get(f"/admin/notifications/inboundemail/{email.pk}/change/").content.decode()
    assert '<iframe sandbox=""' in page
    assert "<script>alert" not in page  # the HTML is only inside srcdoc, escaped
    assert "srcdoc=\"&lt;meta http-equiv=&quot;Content-Security-Policy&quot; content=&quot;default-src &#x27;none&#x27;" \
        in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "BC-2026-114.pdf" in page  # the attachment, listed
    assert auditor.post(f"/admin/notifications/inboundemail/{email.pk}/delete/").status_code == 403


def test_staff_without_the_view_permission_cannot_read_inbound_mail(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/anymail/sendgrid/inbound/", data=sendgrid_parse_payload(), **AUTH)
    sender = staff_client("sender", SENDERS)
    assert sender.get("/admin/notifications/inboundemail/").status_code == 403


# --- issue 16: bounds that lose nothing --------------------------------------------------------

def with_attachments(count: int) -> dict:
    """SendGrid's parsed POST with `count` files (attachment1 … attachmentN, attachment-info)."""
    payload = sendgrid_parse_payload()
    del payload["attachment1"], payload["attachment2"]
    info = {}
    for n in range(1, count + 1):
        part = BytesIO(f"ligne {n}\n".encode())
        part.name = f"piece-{n}.txt"
        payload[f"attachment{n}"] = part
        info[f"attachment{n}"] = {"filename": part.name, "name": part.name, "type": "text/plain"}
    payload["attachments"] = str(count)
    payload["attachment-info"] = json.dumps(info)
    return payload


def test_inbound_mail_with_150_attachments_is_stored_whole(client, heard, django_capture_on_commit_callbacks):
    """Issue 16: more than DATA_UPLOAD_MAX_NUMBER_FILES (100) files got Django's HTML 400 and was lost."""
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/anymail/sendgrid/inbound/", data=with_attachments(150), **AUTH)
    assert response.status_code == 200, response.content
    email = InboundEmail.objects.get()
    assert email.attachments.count() == 150
    assert bytes(email.attachments.get(filename="piece-150.txt").blob.data) == b"ligne 150\n"
    assert heard == [email]


def test_only_the_inbound_route_takes_more_files_than_djangos_cap(client, settings):
    files = {f"f{n}": BytesIO(b"x") for n in range(settings.DATA_UPLOAD_MAX_NUMBER_FILES + 1)}
    for name, file in files.items():
        file.name = f"{name}.txt"
    assert client.post("/admin/login/", data=files).status_code == 400  # Django's cap still holds elsewhere


def test_inbound_mail_above_the_cap_is_a_json_413_naming_it_and_logged(client, heard, settings, caplog,
                                                                      django_capture_on_commit_callbacks):
    settings.EMAIL_INBOUND_MAX_BYTES = 20_000
    payload = sendgrid_parse_payload()
    payload["text"] = "x" * 30_000
    with caplog.at_level(logging.WARNING), django_capture_on_commit_callbacks(execute=True):
        response = client.post("/anymail/sendgrid/inbound/", data=payload, **AUTH)
    assert response.status_code == 413
    assert response.json()["codes"] == {"detail": "inbound_too_large"}
    assert "EMAIL_INBOUND_MAX_BYTES" in response.json()["detail"]
    assert "inbound_too_large" in caplog.text
    assert not InboundEmail.objects.exists() and heard == []


def test_an_inbound_body_far_above_the_cap_is_refused_before_it_is_read(client, settings, caplog):
    settings.EMAIL_INBOUND_MAX_BYTES = 1000
    with caplog.at_level(logging.WARNING):
        response = client.post("/anymail/sendgrid/inbound/", data=b"x" * (2 * 1024 * 1024),
                               content_type="multipart/form-data; boundary=zz", **AUTH)
    assert response.status_code == 413
    assert "EMAIL_INBOUND_MAX_BYTES" in response.json()["detail"]
    assert "Inbound mail refused" in caplog.text


@pytest.mark.parametrize("body, content_type", [
    (b"--zz\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n", "multipart/form-data"),
    (b"garbage", "multipart/form-data; boundary=zz"),
    (b"a=1&b=2", "application/x-www-form-urlencoded"),
])
def test_an_unreadable_inbound_post_is_a_json_400_never_djangos_html(client, caplog, body, content_type):
    with caplog.at_level(logging.WARNING):
        response = client.post("/anymail/sendgrid/inbound/", data=body, content_type=content_type, **AUTH)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert "codes" in response.json()
    assert "webhook /anymail/sendgrid/inbound/" in caplog.text
    assert not InboundEmail.objects.exists()


def test_a_large_part_is_previewed_in_the_admin_with_a_download_of_the_whole(client, settings,
                                                                            django_capture_on_commit_callbacks):
    settings.EMAIL_INBOUND_PREVIEW_CHARS = 1000
    payload = sendgrid_parse_payload()
    payload["text"] = "début " + "t" * 50_000 + " fin-du-texte"
    payload["html"] = "<p>début</p>" + "<b>h</b>" * 10_000 + "<p>fin-du-html</p>"
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post("/anymail/sendgrid/inbound/", data=payload, **AUTH).status_code == 200
    email = InboundEmail.objects.get()
    auditor = staff_client("reader", AUDITORS)
    page = auditor.get(f"/admin/notifications/inboundemail/{email.pk}/change/")
    content = page.content.decode()
    assert "début" in content and "fin-du-texte" not in content and "fin-du-html" not in content
    assert len(page.content) < 60_000
    text = auditor.get(f"/admin/notifications/inboundemail/{email.pk}/part/text/")
    html = auditor.get(f"/admin/notifications/inboundemail/{email.pk}/part/html/")
    assert f"/admin/notifications/inboundemail/{email.pk}/part/text/" in content
    assert text["Content-Disposition"].startswith("attachment") and text.content.decode() == payload["text"]
    assert html["Content-Security-Policy"].startswith("sandbox") and html.content.decode() == payload["html"]
    assert staff_client("sender", SENDERS).get(f"/admin/notifications/inboundemail/{email.pk}/part/text/"
                                               ).status_code == 403


def test_deep_json_in_a_sendgrid_inbound_field_is_a_400(client):
    payload = sendgrid_parse_payload()
    payload["envelope"] = "[" * 5000 + "]" * 5000
    response = client.post("/anymail/sendgrid/inbound/", data=payload, **AUTH)
    assert response.status_code == 400
    assert response.json()["codes"] == {"envelope": ["nesting_too_deep"]}
    assert not InboundEmail.objects.exists()
