"""`EmailMessage` becomes `Message` (issue 20): one table for every channel's messages.

The table is renamed in place (`notifications_emailmessage` -> `notifications_message`, a
catalogue change on PostgreSQL: its rows, indexes and constraints are kept, and the foreign
keys to it are left alone), and so is its content type, by `carry_content_type` here (the
rename is wrapped, so `contenttypes` does not see a RenameModel to add its own step to; a
run without `migrate`'s signals gets it too).

Django 5.2 does not rename permission codenames with the model (ticket 27489): without this
migration `post_migrate` would create `view_message`, `cancel_message`, ... afresh, held by
nobody, and leave every group's and user's grant on the old ones. So the permission rows
themselves take their new codenames, in place: the grants (rows of the group and user M2M
tables) point at them and follow. A row already made under the new codename (a database
migrated to this point by an interrupted run whose `post_migrate` went on) gets the old
row's grants, and the old row goes. Backwards the codenames go back the same way.
"""
from importlib import import_module

from django.db import migrations

in_place = import_module("notifications.migrations.0018_message_channel_address")

OLD, NEW = "emailmessage", "message"
ACTIONS = ("view", "add", "change", "delete", "cancel", "resend")


def carry_content_type(apps, db: str, old: str, new: str):
    """The app's content type of the model, named `new`: renamed from `old` if still so named."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.clear_cache()  # as contenttypes' own RenameContentType does
    renamed = ContentType.objects.using(db).filter(app_label="notifications", model=new).first()
    former = ContentType.objects.using(db).filter(app_label="notifications", model=old).first()
    if former is None:
        return renamed
    if renamed is None:
        former.model = new
        former.save(update_fields=["model"])
        return former
    # Both exist (the new one made by a run's post_migrate): the former's permissions move over.
    Permission = apps.get_model("auth", "Permission")
    for permission in Permission.objects.using(db).filter(content_type=former):
        made = Permission.objects.using(db).filter(content_type=renamed, codename=permission.codename).first()
        if made is None:
            permission.content_type = renamed
            permission.save(update_fields=["content_type"])
        else:
            merge(permission, into=made)
    former.delete()
    return renamed


def merge(permission, *, into) -> None:
    """Give `permission`'s groups and users `into` instead, and delete it."""
    for group in permission.group_set.all():
        group.permissions.add(into)
    for user in permission.user_set.all():
        user.user_permissions.add(into)
    permission.delete()


def carry_permissions(apps, db: str, old: str, new: str) -> None:
    Permission = apps.get_model("auth", "Permission")
    content_type = carry_content_type(apps, db, old, new)
    if content_type is None:  # a database that never had permissions made (none to carry)
        return
    for action in ACTIONS:
        former = Permission.objects.using(db).filter(content_type=content_type, codename=f"{action}_{old}").first()
        if former is None:
            continue
        made = Permission.objects.using(db).filter(content_type=content_type, codename=f"{action}_{new}").first()
        if made is not None:
            merge(former, into=made)
        else:
            former.codename = f"{action}_{new}"
            former.save(update_fields=["codename"])


def forwards(apps, schema_editor):
    carry_permissions(apps, schema_editor.connection.alias, OLD, NEW)


def backwards(apps, schema_editor):
    carry_permissions(apps, schema_editor.connection.alias, NEW, OLD)


class Migration(migrations.Migration):

    dependencies = [
        ('notifications', '0019_message_address_length'),
        ('contenttypes', '0002_remove_content_type_name'),
        ('auth', '0012_alter_user_first_name_max_length'),
    ]

    operations = [
        # Django's RenameModel also drops and adds again the foreign keys of the attempts,
        # events and attachments to the table, each ADD checking every row of its table under
        # lock; on PostgreSQL they follow the table by its oid, so the rename alone is enough.
        in_place.InPlaceOnPostgreSQL(
            [migrations.RenameModel(old_name='EmailMessage', new_name='Message')],
            sql=['ALTER TABLE "notifications_emailmessage" RENAME TO "notifications_message"'],
            reverse_sql=['ALTER TABLE "notifications_message" RENAME TO "notifications_emailmessage"'],
        ),
        migrations.AlterModelOptions(
            name='message',
            options={'ordering': ['-created_at'], 'permissions': [('send_email', 'Can send email'), ('cancel_message', 'Can cancel a scheduled or queued email'), ('resend_message', 'Can resend an email or retry a failed one')], 'verbose_name': 'email message', 'verbose_name_plural': 'email messages'},
        ),
        migrations.RunPython(forwards, backwards),
    ]
