"""Attachment bytes are stored once per content, whatever the number of recipients."""
from __future__ import annotations

import hashlib

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from notifications.models import AttachmentBlob, EmailAttachment
from notifications.channels.email.sending import send_mail_template
from notifications.tests.support.files import make_pdf
from notifications.tests.support.payloads import INVOICE_VARS


@pytest.mark.django_db
def test_one_copy_of_the_bytes_for_every_recipient_and_every_later_message(default_templates):
    pdf = make_pdf("shared")
    recipients = [f"reseller{i}@techconnect.bj" for i in range(5)]
    send_mail_template("billing_invoice_monthly", recipients, INVOICE_VARS, attachments=[("i.pdf", pdf, "application/pdf")])
    send_mail_template("billing_invoice_monthly", "other@rgz.bj", INVOICE_VARS,
                       attachments=[("again.pdf", pdf, "application/pdf"), ("new.pdf", make_pdf("new"), "application/pdf")])
    assert EmailAttachment.objects.count() == 7
    assert AttachmentBlob.objects.count() == 2
    blob = AttachmentBlob.objects.get(pk=hashlib.sha256(pdf).hexdigest())
    assert bytes(blob.data) == pdf and blob.attachments.count() == 6


@pytest.mark.django_db(transaction=True)
def test_the_migration_moves_existing_bytes_into_blobs():
    executor = MigrationExecutor(connection)
    before = [("notifications", "0004_sensitive_content")]
    after = [("notifications", "0005_attachment_blobs")]
    executor.migrate(before)
    apps = executor.loader.project_state(before).apps
    Message = apps.get_model("notifications", "EmailMessage")
    Attachment = apps.get_model("notifications", "EmailAttachment")
    pdf = make_pdf("old")
    digest = hashlib.sha256(pdf).hexdigest()
    for index in range(2):
        message = Message.objects.create(recipient_email=f"a{index}@rgz.bj", from_email="x@rgz.bj", subject="s")
        Attachment.objects.create(message=message, filename="old.pdf", content_type="application/pdf",
                                  size_bytes=len(pdf), sha256=digest, data=pdf)

    executor = MigrationExecutor(connection)
    executor.migrate(after)
    apps = executor.loader.project_state(after).apps
    Blob = apps.get_model("notifications", "AttachmentBlob")
    Attachment = apps.get_model("notifications", "EmailAttachment")
    assert Blob.objects.count() == 1 and bytes(Blob.objects.get().data) == pdf
    assert set(Attachment.objects.values_list("blob_id", flat=True)) == {digest}
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
