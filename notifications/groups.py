"""The groups of CONTRACT.md and the permissions each holds.

Made by migration 0002 and topped up after every `migrate` (post_migrate), so models added
later give Auditors their view permission and Administrators everything without another
data migration. Permissions are only ever added, never removed: an operator's own
additions to a group survive.
"""
from __future__ import annotations

APP = "notifications"

SENDERS = "Senders"
TEMPLATE_EDITORS = "Template editors"
AUDITORS = "Auditors"
ADMINISTRATORS = "Administrators"

#: group → codenames in this app; "view_*" means every view permission, "*" every one.
GROUP_PERMISSIONS: dict[str, tuple[str, ...]] = {
    SENDERS: ("send_email",),
    TEMPLATE_EDITORS: (
        "view_emailtemplate", "add_emailtemplate", "change_emailtemplate",
        "view_emailtemplateversion", "add_emailtemplateversion", "test_emailtemplate",
    ),
    AUDITORS: ("view_*",),
    ADMINISTRATORS: ("*",),
}


def sync_groups(apps) -> None:
    """Create the groups and add the permissions they lack (never removes any)."""
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    available = {p.codename: p for p in Permission.objects.filter(content_type__app_label=APP)}
    for name, patterns in GROUP_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=name)
        wanted = [
            permission
            for codename, permission in available.items()
            if any(
                pattern == "*"
                or codename == pattern
                or (pattern.endswith("*") and codename.startswith(pattern[:-1]))
                for pattern in patterns
            )
        ]
        group.permissions.add(*wanted)


def create_app_permissions(apps) -> None:
    """Permissions are normally made after migrating; a data migration needs them now."""
    from django.contrib.auth.management import create_permissions

    app_config = apps.get_app_config(APP)
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None


def on_post_migrate(sender, *, apps=None, **kwargs) -> None:
    """Also sent by `flush` (transactional tests), without `apps`: use the live registry."""
    if sender.label == APP:
        from django.apps import apps as live_apps

        sync_groups(apps or live_apps)
