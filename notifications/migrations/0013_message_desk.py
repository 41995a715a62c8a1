"""The audit desk (issue 12): `resent_from`, and the indexes its list reads (CONTRACT.md "The
audit desk"): `message_status_created` replaces `message_status_due`, `message_template_key`
and `message_recipient` change columns, `message_lane_created` and `message_resent_from` are new.

On PostgreSQL the indexes are built and dropped CONCURRENTLY: on a table of millions of
messages a plain CREATE INDEX would hold every send and every status change until it is
done. So this migration is not atomic: each step commits on its own, and the migration is
recorded as applied only after the last. If it stops half way (a lost connection, a
statement timeout, Ctrl-C), `migrate` runs it again from the start, so every step may find
its work done: the drops are IF EXISTS, the column is added only when missing, an index
already built and valid is kept, and one left INVALID by the interrupted concurrent build
is dropped (DROP INDEX CONCURRENTLY) and built again (CHANGELOG.md, upgrade notes).
"""
import django.db.models.deletion
import django.db.models.functions.text
from django.conf import settings
from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


def index_validity(schema_editor, name: str) -> bool | None:
    """Whether the index `name` of the current schema is valid; None when there is none."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.indisvalid FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid "
            "WHERE c.relname = %s AND c.relkind = 'i' AND pg_table_is_visible(c.oid)",
            [name],
        )
        row = cursor.fetchone()
    return None if row is None else bool(row[0])


class AddIndex(AddIndexConcurrently):
    """CREATE INDEX CONCURRENTLY on PostgreSQL, a plain CREATE INDEX elsewhere.

    On PostgreSQL a run after an interruption keeps the index a former run built, and
    drops and builds again one that run left INVALID.
    """

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            valid = index_validity(schema_editor, self.index.name)
            if valid:
                return None
            if valid is False:
                schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {schema_editor.quote_name(self.index.name)}")
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


class AddFieldOnce(migrations.AddField):
    """AddField, skipped when a former, interrupted run of this migration added the column."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        column = model._meta.get_field(self.name).column
        with schema_editor.connection.cursor() as cursor:
            columns = schema_editor.connection.introspection.get_table_description(cursor, model._meta.db_table)
        if any(info.name == column for info in columns):
            return None
        return super().database_forwards(app_label, schema_editor, from_state, to_state)


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
        AddFieldOnce(
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
