"""One message table for every channel (issue 20): a `channel` column, email by default, and
the recipient's column renamed `address`, a name that fits a phone number or a device token.

Both are catalogue changes on PostgreSQL, however many messages there are: a column with a
constant default is added without rewriting the table (PostgreSQL 11+), and a column and an
index are renamed in place. The case-insensitive index on the address keeps its pages: it
names the column by number, so it follows the rename, and is only renamed itself
(`message_recipient` -> `message_address`). Django's own operations would drop and build
that index again (its expression names the column), so on PostgreSQL `InPlaceOnPostgreSQL`
runs the SQL itself; other databases (SQLite, the small ones) run Django's operations.
"""
from django.db import migrations, models
from django.db.models.functions import Upper


class InPlaceOnPostgreSQL(migrations.SeparateDatabaseAndState):
    """`operations` for the state and, except on PostgreSQL, for the database; there `sql`
    (and `reverse_sql` backwards) does the same in place."""

    def __init__(self, operations, *, sql, reverse_sql):
        super().__init__(database_operations=operations, state_operations=operations)
        self.sql, self.reverse_sql = sql, reverse_sql

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        for statement in self.sql:
            schema_editor.execute(statement)
        return None

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        for statement in self.reverse_sql:
            schema_editor.execute(statement)
        return None


class Migration(migrations.Migration):

    dependencies = [
        ('notifications', '0017_audit_text_codes'),
    ]

    operations = [
        migrations.AddField(
            model_name='emailmessage',
            name='channel',
            field=models.CharField(db_default='email', default='email', max_length=20, verbose_name='channel'),
        ),
        InPlaceOnPostgreSQL(
            [
                migrations.RemoveIndex(model_name='emailmessage', name='message_recipient'),
                migrations.RenameField(model_name='emailmessage', old_name='recipient_email', new_name='address'),
                migrations.AddIndex(model_name='emailmessage',
                                    index=models.Index(Upper('address'), name='message_address')),
            ],
            sql=[
                'ALTER TABLE "notifications_emailmessage" RENAME COLUMN "recipient_email" TO "address"',
                'ALTER INDEX "message_recipient" RENAME TO "message_address"',
            ],
            reverse_sql=[
                'ALTER INDEX "message_address" RENAME TO "message_recipient"',
                'ALTER TABLE "notifications_emailmessage" RENAME COLUMN "address" TO "recipient_email"',
            ],
        ),
    ]
