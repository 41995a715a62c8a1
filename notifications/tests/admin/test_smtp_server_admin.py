"""SMTP servers in the admin: the password is write-only, encrypted, and bound to its key."""
from __future__ import annotations

import base64

import pytest
from cryptography.fernet import Fernet
from django.urls import reverse

from notifications import crypto
from notifications.exceptions import DecryptionError
from notifications.models import SMTPServerConfig

pytestmark = pytest.mark.django_db

PASSWORD = "S3cret-smtp-P@ss"


@pytest.fixture
def key(settings):
    settings.NOTIFICATIONS_ENCRYPTION_KEY = Fernet.generate_key().decode()
    return settings.NOTIFICATIONS_ENCRYPTION_KEY


def form(**changes) -> dict:
    return {
        "name": "primary", "order": 1, "is_active": "on", "host": "smtp.rgz.bj", "port": 587,
        "security": "starttls", "timeout_seconds": 30, "username": "noreply@rgz.bj", "password": PASSWORD,
        "from_email": "", **changes,
    }


def add_in_admin(admin_client, **changes) -> SMTPServerConfig:
    response = admin_client.post(reverse("admin:notifications_smtpserverconfig_add"), form(**changes))
    assert response.status_code == 302, response.content.decode()[:3000]
    return SMTPServerConfig.objects.get(name=changes.get("name", "primary"))


def stored_column(config: SMTPServerConfig) -> str:
    """The column exactly as the database holds it (a text field: no conversion on the way)."""
    return SMTPServerConfig.objects.filter(pk=config.pk).values_list("password_encrypted", flat=True).get()


def test_the_admin_never_shows_the_stored_password(admin_client, key):
    config = add_in_admin(admin_client)
    pages = [
        admin_client.get(reverse("admin:notifications_smtpserverconfig_change", args=[config.pk])),
        admin_client.get(reverse("admin:notifications_smtpserverconfig_changelist")),
        admin_client.get(reverse("admin:notifications_smtpserverconfig_history", args=[config.pk])),
    ]
    for page in pages:
        assert page.status_code == 200
        html = page.content.decode()
        assert PASSWORD not in html
        assert config.password_encrypted not in html
    change_page = pages[0].content.decode()
    assert 'type="password" name="password"' in change_page
    assert 'name="password" value=' not in change_page
    assert "A password is stored" in change_page  # said, never shown
    add_page = admin_client.get(reverse("admin:notifications_smtpserverconfig_add")).content.decode()
    assert "A password is stored" not in add_page


def test_the_column_holds_no_plain_text_and_another_key_cannot_decrypt_it(admin_client, key, settings):
    config = add_in_admin(admin_client)
    column = stored_column(config)

    assert column and PASSWORD not in column
    assert base64.b64encode(PASSWORD.encode()).decode() not in column
    assert config.get_password() == PASSWORD

    settings.NOTIFICATIONS_ENCRYPTION_KEY = Fernet.generate_key().decode()
    with pytest.raises(DecryptionError, match="cannot be decrypted with NOTIFICATIONS_ENCRYPTION_KEY"):
        SMTPServerConfig.objects.get(pk=config.pk).get_password()

    settings.NOTIFICATIONS_ENCRYPTION_KEY = f"{settings.NOTIFICATIONS_ENCRYPTION_KEY},{key}"  # rotated: old key second
    assert SMTPServerConfig.objects.get(pk=config.pk).get_password() == PASSWORD


def test_an_empty_password_field_keeps_the_password_and_remove_clears_it(admin_client, key):
    config = add_in_admin(admin_client)
    change = reverse("admin:notifications_smtpserverconfig_change", args=[config.pk])

    assert admin_client.post(change, form(password="", port=2525)).status_code == 302
    config.refresh_from_db()
    assert config.port == 2525 and config.get_password() == PASSWORD

    assert admin_client.post(change, form(password="", clear_password="on")).status_code == 302
    config.refresh_from_db()
    assert not config.has_password and config.get_password() == ""


def test_a_new_password_and_remove_together_is_a_form_error(admin_client, key):
    config = add_in_admin(admin_client)
    response = admin_client.post(
        reverse("admin:notifications_smtpserverconfig_change", args=[config.pk]), form(clear_password="on")
    )
    assert response.status_code == 200
    assert "Either give a new password or remove the stored one" in response.content.decode()


def test_encryption_needs_a_key_outside_development(settings):
    settings.ENVIRONMENT, settings.NOTIFICATIONS_ENCRYPTION_KEY = "production", ""
    with pytest.raises(Exception, match="NOTIFICATIONS_ENCRYPTION_KEY is required outside development"):
        SMTPServerConfig(name="x", host="h").set_password(PASSWORD)


def test_development_without_a_key_uses_one_derived_from_the_secret_key(settings):
    settings.ENVIRONMENT, settings.NOTIFICATIONS_ENCRYPTION_KEY = "development", ""
    token = crypto.encrypt(PASSWORD)
    assert crypto.decrypt(token) == PASSWORD
    settings.SECRET_KEY = "another-secret"
    with pytest.raises(DecryptionError):
        crypto.decrypt(token)
