"""An attempt's `server` is named `sent_via`, as on its message (issue 20: one name).

Both hold what the message was handed to (an SMTP server's name, an ESP, host:port); the
message's name is the one the README, the contract and the SMTP servers' help text use,
and says "the way it went" of any channel's provider, where "server" is the email's. The
label ("server") and the API's JSON name (`server`) stay. On PostgreSQL a column rename,
no rewrite of the table.
"""
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('notifications', '0021_marketing_is_a_kind'),
    ]

    operations = [
        migrations.RenameField(model_name='deliveryattempt', old_name='server', new_name='sent_via'),
    ]
