"""Management commands used by `make run`."""
from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from notifications.exceptions import ImmutableVersionError
from notifications.models import APIKey, EmailTemplate, EmailTemplateVersion
from notifications.models.access import hash_key
from notifications.authoring.versions import create_template_version

pytestmark = pytest.mark.django_db

EXPECTED = {
    "billing_invoice_monthly": ("billing", "default", 3, True),
    "incident_alert_critical": ("incident", "urgent", 5, False),
    "onboarding_welcome": ("onboarding", "default", 2, False),
    "onboarding_approved": ("onboarding", "default", 2, False),
    "cutover_reminder": ("onboarding", "bulk", 1, False),
    "rma_confirmation": ("rma", "default", 2, False),
    "sla_credit_notification": ("billing", "default", 2, False),
    "support_ticket_created": ("support", "default", 2, False),
    "account_creation_invitation": ("account", "default", 3, False),
}


def test_default_templates_load_with_their_policies(default_templates):
    templates = {t.key: t for t in EmailTemplate.objects.all()}
    assert set(templates) == set(EXPECTED)
    for key, (category, lane, attempts, attachments) in EXPECTED.items():
        template = templates[key]
        assert (template.category, template.lane, template.max_attempts, template.attachments_allowed) == (
            category, lane, attempts, attachments), key
        assert template.versions.filter(is_active=True).count() == 1, key
    assert templates["incident_alert_critical"].extra_recipients == ["noc@rgz.bj"]
    assert "invoice_date" in templates["billing_invoice_monthly"].optional_variables


def test_every_default_template_renders_its_sample_variables(default_templates):
    from notifications.authoring.rendering import VersionSource, render

    for template in EmailTemplate.objects.all():
        version = template.versions.get(is_active=True)
        out = render(
            VersionSource.of(version), variables=template.sample_variables,
            required=template.required_variables, optional=template.optional_variables, layout_name=template.layout,
        )
        assert out.subject, template.key
        assert "<html" in out.html and "</html>" in out.html, template.key
        assert "{{" not in out.html and "{{" not in out.text, template.key


def test_loading_again_never_overwrites_an_edit(default_templates):
    template = EmailTemplate.objects.get(key="rma_confirmation")
    create_template_version(
        template=template, language="fr", subject="Édité {{ rma_number }} {{ serial_number }}",
        html_content="<p>{{ status }} {{ link_tracking }}</p>",
    )
    out = io.StringIO()
    call_command("load_default_templates", stdout=out)
    assert "0 created" in out.getvalue()
    assert template.versions.get(is_active=True).subject.startswith("Édité")
    assert EmailTemplateVersion.objects.filter(template=template).count() == 2


def test_versions_are_immutable(default_templates):
    version = EmailTemplateVersion.objects.first()
    version.subject = "rewritten"
    with pytest.raises(ImmutableVersionError):
        version.save()


@pytest.mark.parametrize(("language", "said", "exists"), [
    ("fr", "avec le mot de passe : ", "Un superutilisateur existe déjà"),
    ("en", "with password: ", "A superuser exists already"),
])
def test_ensure_admin_creates_one_superuser_once_in_the_process_language(settings, language, said, exists):
    settings.LANGUAGE_CODE = language  # as load_default_templates and every command: the process's language
    out = io.StringIO()
    call_command("ensure_admin", stdout=out)
    assert said in out.getvalue()
    password = out.getvalue().split(said)[1].split()[0]
    user = get_user_model().objects.get(username="admin")
    assert user.is_superuser and user.check_password(password)
    again = io.StringIO()
    call_command("ensure_admin", stdout=again)
    assert again.getvalue().startswith(exists)
    assert "ensure_admin --reset" in again.getvalue() and said not in again.getvalue()
    assert get_user_model().objects.count() == 1


COMMANDS = ("load_default_templates", "sweep_messages", "unlock", "compile_catalogues", "create_api_key",
            "export_templates", "import_templates", "ensure_admin", "create_staff")


def test_every_command_s_help_follows_the_process_language(settings):
    from django.core.management import load_command_class

    def description(name: str, language: str) -> str:
        settings.LANGUAGE_CODE = language
        return load_command_class("notifications", name).create_parser("manage.py", name).description

    for name in COMMANDS:
        french, english = description(name, "fr"), description(name, "en")
        assert french and english and french != english, name
    assert description("load_default_templates", "fr").startswith("Crée les modèles d’e-mail par défaut")
    assert description("load_default_templates", "en").startswith("Create the default email templates")


def test_create_api_key_stores_its_name_and_makes_test_keys_with_test():
    from django.core.management.base import CommandError

    from notifications.access.groups import SENDERS
    from notifications.tests.support.api import make_user

    user = make_user("billing-service", SENDERS)

    def create(*args) -> tuple[str, str]:
        out, err = io.StringIO(), io.StringIO()
        call_command("create_api_key", "billing-service", *args, stdout=out, stderr=err)
        return out.getvalue().strip(), err.getvalue()

    test_raw, test_said = create("--name", "Facturation (CI)", "--test")
    live_raw, live_said = create("--name", "Facturation")
    unnamed_raw, _ = create()

    by_raw = {raw: APIKey.objects.get(key_hash=hash_key(raw)) for raw in (test_raw, live_raw, unnamed_raw)}
    assert {raw: (key.user, key.name, key.is_test) for raw, key in by_raw.items()} == {
        test_raw: (user, "Facturation (CI)", True),
        live_raw: (user, "Facturation", False),
        unnamed_raw: (user, "", False),
    }
    assert test_raw.startswith("ntf_test_") and live_raw.startswith("ntf_live_")
    assert test_said.startswith("Test key for billing-service") and live_said.startswith("Key for billing-service")
    with pytest.raises(CommandError, match="No user named 'nobody'"):
        call_command("create_api_key", "nobody", "--name", "x", stdout=io.StringIO(), stderr=io.StringIO())
    assert APIKey.objects.count() == 3


def run_create_api_key(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("create_api_key", *args, stdout=out, stderr=err)
    return out.getvalue().strip(), err.getvalue()


def test_create_api_key_makes_a_service_account_in_a_group_that_cannot_log_in(client):
    from notifications.access.groups import SENDERS, TEMPLATE_EDITORS

    raw, said = run_create_api_key("billing-service", "--create-user", "--group", SENDERS, "--name", "billing")
    user = get_user_model().objects.get(username="billing-service")
    assert APIKey.objects.get(key_hash=hash_key(raw)).user == user and raw.startswith("ntf_live_")
    assert list(user.groups.values_list("name", flat=True)) == [SENDERS]
    assert not user.is_staff and not user.is_superuser and user.is_active
    assert not user.has_usable_password() and not user.check_password("")
    assert user.has_perm("notifications.send_email") and not user.has_perm("notifications.change_emailtemplate")
    assert "billing-service" in said and raw not in said  # the key goes to stdout alone, once
    # The admin's login refuses it whatever the password.
    response = client.post("/admin/login/", {"username": "billing-service", "password": ""})
    assert response.status_code == 200 and "_auth_user_id" not in client.session

    # Again, on the user that now exists: another key, and --group adds a group.
    second, _ = run_create_api_key("billing-service", "--create-user", "--group", TEMPLATE_EDITORS, "--test")
    assert second.startswith("ntf_test_") and get_user_model().objects.count() == 1
    assert sorted(user.groups.values_list("name", flat=True)) == [SENDERS, TEMPLATE_EDITORS]
    assert APIKey.objects.filter(user=user).count() == 2


def test_create_api_key_refuses_an_unknown_user_without_create_user_and_an_unknown_group():
    from django.contrib.auth.models import Group
    from django.core.management.base import CommandError
    from django.utils import translation

    with translation.override("en"):
        with pytest.raises(CommandError, match="No user named 'biling-service'.*--create-user"):
            run_create_api_key("biling-service", "--group", "Senders")
        with pytest.raises(CommandError, match="No group named 'Sender'.*Senders"):
            run_create_api_key("billing-service", "--create-user", "--group", "Senders", "--group", "Sender")
        with pytest.raises(CommandError, match="Enter a valid username"):
            run_create_api_key("billing service", "--create-user")
    # Nothing written by any refusal: no user, no key, no group.
    assert get_user_model().objects.count() == 0 and APIKey.objects.count() == 0
    assert not Group.objects.filter(name="Sender").exists()
