"""Auditors lose the view permissions of SMTP servers, API keys and idempotency records
(CONTRACT.md "Who may do what": only Administrators see them); `sync_groups` keeps them away."""
from django.db import migrations

from notifications.access.groups import AUDITORS, WITHHELD


def withhold(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for group in Group.objects.filter(name=AUDITORS):
        group.permissions.remove(*Permission.objects.filter(
            content_type__app_label="notifications", codename__in=WITHHELD[AUDITORS]))


def give_back(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for group in Group.objects.filter(name=AUDITORS):
        group.permissions.add(*Permission.objects.filter(
            content_type__app_label="notifications", codename__in=WITHHELD[AUDITORS]))


class Migration(migrations.Migration):

    dependencies = [
        ("notifications", "0013_message_desk"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(withhold, give_back)]
