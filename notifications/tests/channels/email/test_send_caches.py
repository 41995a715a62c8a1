"""The write path's caches never serve stale content, and a send costs a known number of queries.

What is remembered between sends: compiled template parts (per version id), layouts (Jinja's
loader, checked against the file's modification time), folded MIME header fields (per value)
and the template lookup's SQL text (per database). Each test changes what a cache could hold
and checks that the next send shows the change.
"""
from __future__ import annotations

import email
import os
from email import policy

import pytest
from django.db import connection

from notifications.exceptions import TemplateInactive
from notifications.models import EmailTemplate
from notifications.channels.email.sending import send_mail_template
from notifications.authoring.versions import create_template_version
from notifications.tests.factories import EmailTemplateFactory
from notifications.tests.support.files import make_pdf
from notifications.tests.support.payloads import INVOICE_VARS

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def prebuilding(settings):
    """A backend that sends prebuilt bytes, so every send builds its MIME (and folds its headers)."""
    settings.EMAIL_BACKEND = "notifications.backends.SMTPBackend"


def stored_subject(message) -> str:
    message.refresh_from_db()
    return email.message_from_bytes(bytes(message.mime), policy=policy.default)["Subject"]


def test_a_new_version_is_sent_with_its_own_content_not_the_compiled_old_one():
    template = EmailTemplateFactory()
    [first] = send_mail_template(template.key, "a@example.com", {"name": "Awa"})
    create_template_version(template=template, language="fr", subject="Salut {{ name }}",
                            html_content="<p>Salut {{ name }}, nouvelle version</p>")
    [second] = send_mail_template(template.key, "a@example.com", {"name": "Awa"})

    assert (first.subject, second.subject) == ("Bonjour Awa", "Salut Awa")
    assert "nouvelle version" in second.html_content and "nouvelle version" not in first.html_content
    assert second.template_version_id != first.template_version_id
    # The prebuilt bytes carry the new subject: its folded header is not the old one's.
    assert (stored_subject(first), stored_subject(second)) == ("Bonjour Awa", "Salut Awa")


def test_each_language_is_rendered_from_its_own_version():
    template = EmailTemplateFactory(versions={
        "fr": {"subject": "Bonjour {{ name }}", "html_content": "<p>Bonjour {{ name }}</p>"},
        "en": {"subject": "Hello {{ name }}", "html_content": "<p>Hello {{ name }}</p>"},
    })
    subjects = [
        send_mail_template(template.key, "a@example.com", {"name": "Awa"}, language=language)[0].subject
        for language in ("en", "fr", "en", None)
    ]
    assert subjects == ["Hello Awa", "Bonjour Awa", "Hello Awa", "Bonjour Awa"]


def test_a_changed_layout_file_is_used_at_the_next_send(settings, tmp_path):
    settings.EMAIL_LAYOUTS_DIR = tmp_path
    html, text = tmp_path / "framed.html", tmp_path / "framed.txt"
    html.write_text("<html><body><p>Cadre un</p>{{ content }}</body></html>")
    text.write_text("Cadre un\n{{ content }}")
    template = EmailTemplateFactory(layout="framed")
    [first] = send_mail_template(template.key, "a@example.com", {"name": "Awa"})

    html.write_text("<html><body><p>Cadre deux</p>{{ content }}</body></html>")
    text.write_text("Cadre deux\n{{ content }}")
    later = os.stat(html).st_mtime + 10  # a new modification time, whatever the clock's resolution
    os.utime(html, (later, later))
    os.utime(text, (later, later))
    [second] = send_mail_template(template.key, "a@example.com", {"name": "Awa"})

    assert "Cadre un" in first.html_content and "Cadre un" in first.text_content
    assert "Cadre deux" in second.html_content and "Cadre deux" in second.text_content
    assert "Cadre un" not in second.html_content


def test_a_template_edited_between_two_sends_is_read_afresh():
    template = EmailTemplateFactory()
    send_mail_template(template.key, "a@example.com", {"name": "Awa"})
    EmailTemplate.objects.filter(pk=template.pk).update(is_active=False)  # as another process would

    with pytest.raises(TemplateInactive):
        send_mail_template(template.key, "a@example.com", {"name": "Awa"})

    EmailTemplate.objects.filter(pk=template.pk).update(is_active=True, extra_recipients=["noc@example.com"])
    messages = send_mail_template(template.key, "a@example.com", {"name": "Awa"})
    assert sorted(message.address for message in messages) == ["a@example.com", "noc@example.com"]


def test_a_send_with_an_attachment_costs_a_known_number_of_queries(default_templates, django_assert_num_queries):
    """The template with its active versions (1); the send's transaction (here a savepoint and
    its release inside the test's: 2), in it the suppression check (1), then the message, its
    attachment's bytes (once per content: known bytes are left as they are) and the attachment:
    one statement of three on PostgreSQL (1), three elsewhere. On a real connection BEGIN and
    COMMIT take the savepoint's place."""
    pdf = make_pdf("Facture INV-1")
    attachments = [("facture.pdf", pdf, "application/pdf")]
    send_mail_template("billing_invoice_monthly", "first@example.com", INVOICE_VARS, attachments=attachments)

    with django_assert_num_queries(5 if connection.vendor == "postgresql" else 7):
        [message] = send_mail_template("billing_invoice_monthly", "second@example.com", INVOICE_VARS,
                                       attachments=attachments)
    assert bytes(message.attachments.get().blob.data) == pdf


def test_a_boundary_that_appears_in_the_text_is_never_used(monkeypatch):
    """The quick check before the library's own: a boundary found in the text is replaced."""
    from email import generator

    from notifications.channels.email import mime

    tokens = iter([1, 1, 2])
    monkeypatch.setattr(generator.random, "randrange", lambda limit: next(tokens))
    first = mime._Generator._make_boundary()
    text = b"body\r\n--" + first.encode() + b"\r\nmore"

    chosen = mime._Generator._make_boundary(text)
    assert chosen != first and ("--" + chosen).encode() not in text


def test_the_writer_inserts_rows_as_bulk_create_would(default_templates):
    """`raw_sql.insert`: fields prepared by the ORM (auto_now_add, JSON, bytes), conflicts
    ignored when asked, rows past the database's parameter limit split into batches, an
    unsaved related object refused as `bulk_create` refuses it."""
    from notifications.models import AttachmentBlob, EmailAttachment, Message
    from notifications.core.outbox import raw_sql

    messages = [Message(address=f"r{i}@example.com", from_email="a@example.com", subject="S",
                             variables={"n": i, "nested": {"é": [1, 2]}}, cc=["c@example.com"], mime=b"\x00\xffbytes")
                for i in range(60)]  # 60 rows x every column: past SQLite's 999 parameters per statement
    raw_sql.insert(messages)
    stored = Message.objects.get(address="r7@example.com")
    assert stored.variables == {"n": 7, "nested": {"é": [1, 2]}} and stored.cc == ["c@example.com"]
    assert bytes(stored.mime) == b"\x00\xffbytes" and stored.created_at is not None
    assert Message.objects.filter(address__startswith="r").count() == 60
    assert not messages[0]._state.adding

    blob = {"sha256": "a" * 64, "size_bytes": 3, "data": b"abc"}
    raw_sql.insert([AttachmentBlob(**blob)], ignore_conflicts=True)
    raw_sql.insert([AttachmentBlob(**blob)], ignore_conflicts=True)
    assert AttachmentBlob.objects.filter(sha256="a" * 64).count() == 1

    unsaved = Message(address="x@example.com", from_email="a@example.com", subject="S")
    unsaved.pk = None
    with pytest.raises(ValueError):
        raw_sql.insert([EmailAttachment(message=unsaved, filename="f.pdf", content_type="application/pdf",
                                        size_bytes=3, blob_id="a" * 64)])
