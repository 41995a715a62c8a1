"""The audit desk (issue 12): `resent_from`, and the indexes its list reads (CONTRACT.md "The
audit desk"): `message_status_created` replaces `message_status_due`, `message_template_key`
and `message_recipient` change columns, `message_lane_created` and `message_resent_from` are new.

On PostgreSQL the indexes are built and dropped CONCURRENTLY: on a table of millions of
messages a plain CREATE INDEX would hold every send and every status change until it is
done. So this migration is not atomic; if it stops half way, an index left INVALID by a
failed concurrent build is dropped by hand (`DROP INDEX CONCURRENTLY name`) before running
it again.
"""
import django.db.models.deletion
import django.db.models.functions.text
from django.conf import settings
from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class AddIndex(AddIndexConcurrently):
    """CREATE INDEX CONCURRENTLY on PostgreSQL, a plain CREATE INDEX elsewhere."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        return migrations.AddIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        return migrations.AddIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)


class RemoveIndex(RemoveIndexConcurrently):
    """DROP INDEX CONCURRENTLY on PostgreSQL, a plain DROP INDEX elsewhere."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        return migrations.RemoveIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        return migrations.RemoveIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):

    atomic = False

    dependencies = [
        ('notifications', '0012_template_version_activation'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        RemoveIndex(
            model_name='emailmessage',
            name='message_status_due',
        ),
        RemoveIndex(
            model_name='emailmessage',
            name='message_template_key',
        ),
        RemoveIndex(
            model_name='emailmessage',
            name='message_recipient',
        ),
        migrations.AddField(
            model_name='emailmessage',
            name='resent_from',
            field=models.ForeignKey(blank=True, db_index=False, help_text='The message this one resends.', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='resends', to='notifications.emailmessage', verbose_name='resent from'),
        ),
        AddIndex(
            model_name='emailmessage',
            index=models.Index(fields=['status', 'created_at'], name='message_status_created'),
        ),
        AddIndex(
            model_name='emailmessage',
            index=models.Index(fields=['template_key', 'created_at'], name='message_template_key'),
        ),
        AddIndex(
            model_name='emailmessage',
            index=models.Index(fields=['lane', 'created_at'], name='message_lane_created'),
        ),
        AddIndex(
            model_name='emailmessage',
            index=models.Index(django.db.models.functions.text.Upper('recipient_email'), name='message_recipient'),
        ),
        AddIndex(
            model_name='emailmessage',
            index=models.Index(condition=models.Q(('resent_from__isnull', False)), fields=['resent_from'], name='message_resent_from'),
        ),
    ]
