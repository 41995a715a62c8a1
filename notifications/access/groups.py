"""The groups of CONTRACT.md and the permissions each holds.

Made by migration 0002 and topped up after every `migrate` (post_migrate), so models added
later give Auditors their view permission and Administrators everything without another
data migration. Permissions are only ever added, never removed, so an operator's own
additions to a group survive, with one exception: `WITHHELD` (Auditors never hold the view
permissions of SMTP servers, API keys and idempotency records, which only Administrators
see; migration 0014 took them away, and every sync takes them away again).
"""
from __future__ import annotations

from django.db import DEFAULT_DB_ALIAS

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
        # Who made which version active: the rollbacks of their own templates.
        "view_templateversionactivation",
    ),
    AUDITORS: ("view_*",),
    ADMINISTRATORS: ("*",),
}

#: group → codenames it must never hold, even when a pattern above matches them (and even
#: when an operator added them): what only Administrators may see.
WITHHELD: dict[str, tuple[str, ...]] = {
    AUDITORS: ("view_smtpserverconfig", "view_apikey", "view_idempotencyrecord"),
}


def sync_groups(apps, *, using: str = DEFAULT_DB_ALIAS) -> None:
    """Create the groups, add the permissions they lack and take away the `WITHHELD` ones
    (the only permissions ever removed), in the database `using` (the one being migrated)."""
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    available = {p.codename: p for p in Permission.objects.using(using).filter(content_type__app_label=APP)}
    for name, patterns in GROUP_PERMISSIONS.items():
        group, _ = Group.objects.using(using).get_or_create(name=name)
        withheld = set(WITHHELD.get(name, ()))
        wanted = [
            permission
            for codename, permission in available.items()
            if codename not in withheld and any(
                pattern == "*"
                or codename == pattern
                or (pattern.endswith("*") and codename.startswith(pattern[:-1]))
                for pattern in patterns
            )
        ]
        group.permissions.add(*wanted)
        if withheld:
            group.permissions.remove(*[available[codename] for codename in withheld if codename in available])


def create_app_permissions(apps, *, using: str = DEFAULT_DB_ALIAS) -> None:
    """Permissions are normally made after migrating; a data migration needs them now."""
    from django.contrib.auth.management import create_permissions

    app_config = apps.get_app_config(APP)
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0, using=using)
    app_config.models_module = None


def on_post_migrate(sender, *, apps=None, using: str = DEFAULT_DB_ALIAS, **kwargs) -> None:
    """Also sent by `flush` (transactional tests), without `apps`: use the live registry."""
    if sender.label == APP:
        from django.apps import apps as live_apps

        sync_groups(apps or live_apps, using=using)
