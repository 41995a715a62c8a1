"""Attachments' bytes move to content-addressed AttachmentBlob rows, one per SHA-256."""
import django.db.models.deletion
from django.db import migrations, models


def move_bytes_to_blobs(apps, schema_editor):
    EmailAttachment = apps.get_model("notifications", "EmailAttachment")
    AttachmentBlob = apps.get_model("notifications", "AttachmentBlob")
    for attachment in EmailAttachment.objects.all().iterator(chunk_size=200):
        AttachmentBlob.objects.get_or_create(
            sha256=attachment.sha256,
            defaults={"size_bytes": attachment.size_bytes, "data": attachment.data},
        )
        EmailAttachment.objects.filter(pk=attachment.pk).update(blob_id=attachment.sha256)


def copy_bytes_back(apps, schema_editor):
    EmailAttachment = apps.get_model("notifications", "EmailAttachment")
    for attachment in EmailAttachment.objects.select_related("blob").iterator(chunk_size=200):
        EmailAttachment.objects.filter(pk=attachment.pk).update(
            sha256=attachment.blob_id, data=attachment.blob.data
        )


class Migration(migrations.Migration):

    dependencies = [
        ("notifications", "0004_sensitive_content"),
    ]

    operations = [
        migrations.CreateModel(
            name="AttachmentBlob",
            fields=[
                ("sha256", models.CharField(max_length=64, primary_key=True, serialize=False)),
                ("size_bytes", models.PositiveIntegerField()),
                ("data", models.BinaryField()),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
        ),
        migrations.AddField(
            model_name="emailattachment",
            name="blob",
            field=models.ForeignKey(
                null=True, on_delete=django.db.models.deletion.PROTECT,
                related_name="attachments", to="notifications.attachmentblob",
            ),
        ),
        migrations.RunPython(move_bytes_to_blobs, copy_bytes_back),
        migrations.RemoveField(model_name="emailattachment", name="data"),
        migrations.RemoveField(model_name="emailattachment", name="sha256"),
        migrations.AlterField(
            model_name="emailattachment",
            name="blob",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="attachments", to="notifications.attachmentblob",
            ),
        ),
    ]
