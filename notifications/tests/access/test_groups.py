"""The contract's groups, made by migration and topped up for models added later."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from notifications.access.groups import ADMINISTRATORS, AUDITORS, SENDERS, TEMPLATE_EDITORS

pytestmark = pytest.mark.django_db


def codenames(name: str) -> set[str]:
    return set(Group.objects.get(name=name).permissions.values_list("codename", flat=True))


def test_groups_hold_the_contracts_permissions():
    assert codenames(SENDERS) == {"send_email"}
    assert codenames(TEMPLATE_EDITORS) == {
        "view_emailtemplate", "add_emailtemplate", "change_emailtemplate",
        "view_emailtemplateversion", "add_emailtemplateversion", "test_emailtemplate",
        "view_templateversionactivation",
    }
    auditors = codenames(AUDITORS)
    assert {"view_message", "view_emailattachment", "view_deliveryevent"} <= auditors
    assert all(code.startswith("view_") for code in auditors)
    # Every view permission but what only Administrators see (CONTRACT.md "Who may do what").
    assert {"view_suppression", "view_inboundemail", "view_deliveryattempt"} <= auditors
    assert not auditors & {"view_smtpserverconfig", "view_apikey", "view_idempotencyrecord"}
    administrators = codenames(ADMINISTRATORS)
    # SMTPServerConfig came in a later migration than the groups: topped up on migrate.
    assert {"add_smtpserverconfig", "change_smtpserverconfig", "delete_smtpserverconfig", "send_email"} <= administrators


def test_an_operators_addition_to_a_group_survives_a_resync():
    from django.apps import apps
    from django.contrib.auth.models import Permission

    from notifications.access.groups import sync_groups

    extra = Permission.objects.get(codename="view_message")
    Group.objects.get(name=SENDERS).permissions.add(extra)
    sync_groups(apps)
    assert "view_message" in codenames(SENDERS)


def test_a_resync_takes_the_administrators_secrets_away_from_auditors_again():
    """What an older install granted (every `view_*`), or an operator added, is withheld on migrate."""
    from django.apps import apps
    from django.contrib.auth.models import Permission

    from notifications.access.groups import sync_groups

    auditors = Group.objects.get(name=AUDITORS)
    auditors.permissions.add(*Permission.objects.filter(
        codename__in=["view_smtpserverconfig", "view_apikey", "view_idempotencyrecord", "add_suppression"]))
    sync_groups(apps)
    assert not codenames(AUDITORS) & {"view_smtpserverconfig", "view_apikey", "view_idempotencyrecord"}
    assert "add_suppression" in codenames(AUDITORS)  # any other addition survives
    assert "view_smtpserverconfig" in codenames(ADMINISTRATORS)


def test_the_migration_withholds_them_on_an_existing_install():
    from importlib import import_module

    from django.apps import apps
    from django.contrib.auth.models import Permission

    migration = import_module("notifications.migrations.0014_auditors_without_secrets")
    auditors = Group.objects.get(name=AUDITORS)
    auditors.permissions.add(*Permission.objects.filter(codename__in=["view_apikey", "view_smtpserverconfig"]))
    migration.withhold(apps, None)
    assert not codenames(AUDITORS) & {"view_smtpserverconfig", "view_apikey", "view_idempotencyrecord"}
    assert "view_message" in codenames(AUDITORS)
