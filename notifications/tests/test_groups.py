"""The contract's groups, made by migration and topped up for models added later."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from notifications.groups import ADMINISTRATORS, AUDITORS, SENDERS, TEMPLATE_EDITORS

pytestmark = pytest.mark.django_db


def codenames(name: str) -> set[str]:
    return set(Group.objects.get(name=name).permissions.values_list("codename", flat=True))


def test_groups_hold_the_contracts_permissions():
    assert codenames(SENDERS) == {"send_email"}
    assert codenames(TEMPLATE_EDITORS) == {
        "view_emailtemplate", "add_emailtemplate", "change_emailtemplate",
        "view_emailtemplateversion", "add_emailtemplateversion", "test_emailtemplate",
    }
    auditors = codenames(AUDITORS)
    assert {"view_emailmessage", "view_emailattachment", "view_deliveryevent"} <= auditors
    assert all(code.startswith("view_") for code in auditors)
    administrators = codenames(ADMINISTRATORS)
    # SMTPServerConfig came in a later migration than the groups: topped up on migrate.
    assert {"add_smtpserverconfig", "change_smtpserverconfig", "delete_smtpserverconfig", "send_email"} <= administrators


def test_an_operators_addition_to_a_group_survives_a_resync():
    from django.apps import apps
    from django.contrib.auth.models import Permission

    from notifications.groups import sync_groups

    extra = Permission.objects.get(codename="view_emailmessage")
    Group.objects.get(name=SENDERS).permissions.add(extra)
    sync_groups(apps)
    assert "view_emailmessage" in codenames(SENDERS)
