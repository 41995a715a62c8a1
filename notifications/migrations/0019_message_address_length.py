"""The `address` column widened to 512 characters, for any channel's address (a web push
endpoint is a URL of a few hundred characters; an email address is at most 254).

Widening a varchar is a catalogue change on PostgreSQL, but not for an index on an
expression of the column: PostgreSQL builds such an index again on any change of type,
under the ALTER TABLE's exclusive lock, which on millions of messages would hold every
send, every status change and every read of the table for as long. So the case-insensitive
index is dropped and built again CONCURRENTLY around the change, as 0013 does, and this
migration is not atomic: the searches by address read the table instead of an index for
the few moments it takes. Run again after an interruption, each step finds its work done
or does it again (0013's docstring, CHANGELOG.md's upgrade notes).
"""
from importlib import import_module

from django.db import migrations, models
from django.db.models.functions import Upper

desk = import_module("notifications.migrations.0013_message_desk")


def analyze(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute('ANALYZE "notifications_emailmessage"')


class Migration(migrations.Migration):

    atomic = False

    dependencies = [
        ('notifications', '0018_message_channel_address'),
    ]

    operations = [
        desk.RemoveIndex(model_name='emailmessage', name='message_address'),
        migrations.AlterField(
            model_name='emailmessage',
            name='address',
            field=models.CharField(max_length=512, verbose_name='recipient address'),
        ),
        desk.AddIndex(model_name='emailmessage', index=models.Index(Upper('address'), name='message_address')),
        # The planner's statistics of an index's expression are the index's own: the dropped
        # one's went with it, and ANALYZE alone gathers them for the new one (autovacuum does
        # not, for a new index). Without them it guesses 0.5 % of the table for any address,
        # and the desk's search and a recipient's history read another index instead.
        migrations.RunPython(analyze, migrations.RunPython.noop, elidable=False),
    ]
