"""System checks: the encryption key, the CA bundle, and DatabaseSMTPBackend without a server."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.conf import settings as django_settings
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from notifications import checks
from notifications.models import SMTPServerConfig


def ids(messages) -> list[str]:
    return [message.id for message in messages]


def test_a_missing_key_fails_outside_development_only(settings):
    settings.NOTIFICATIONS_ENCRYPTION_KEY = ""
    settings.ENVIRONMENT = "development"
    assert checks.check_encryption_key() == []
    for environment in ("preview", "staging", "production"):
        settings.ENVIRONMENT = environment
        [error] = checks.check_encryption_key()
        assert error.id == "notifications.E001" and "required outside development" in error.msg


def test_a_malformed_key_fails_everywhere_and_a_good_one_passes(settings):
    settings.NOTIFICATIONS_ENCRYPTION_KEY = "not-a-fernet-key"
    assert ids(checks.check_encryption_key()) == ["notifications.E001"]
    settings.ENVIRONMENT, settings.NOTIFICATIONS_ENCRYPTION_KEY = "production", Fernet.generate_key().decode()
    assert checks.check_encryption_key() == []


def test_manage_py_check_fails_clearly_in_production_without_a_key(settings):
    settings.ENVIRONMENT, settings.NOTIFICATIONS_ENCRYPTION_KEY = "production", ""
    with pytest.raises(SystemCheckError, match="NOTIFICATIONS_ENCRYPTION_KEY is required outside development"):
        call_command("check")


def test_the_ca_bundle_must_exist_and_be_honoured_by_the_backend(settings, tmp_path):
    settings.SMTP_SSL_CAFILE = str(tmp_path / "missing.pem")
    assert ids(checks.check_ssl_cafile()) == ["notifications.E002"]

    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    settings.SMTP_SSL_CAFILE = str(tmp_path / "ca.pem")
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    assert ids(checks.check_ssl_cafile()) == ["notifications.W002"]
    for backend in ("notifications.backends.SMTPBackend", "notifications.backends.DatabaseSMTPBackend"):
        settings.EMAIL_BACKEND = backend
        assert checks.check_ssl_cafile() == []


@pytest.mark.django_db
def test_database_backend_without_an_active_server_warns(settings):
    settings.EMAIL_BACKEND = "notifications.backends.DatabaseSMTPBackend"
    SMTPServerConfig.objects.create(name="retired", host="smtp.rgz.bj", is_active=False)

    [warning] = checks.check_database_smtp_servers(databases=["default"])
    assert warning.id == "notifications.W001" and "no SMTP server is active" in warning.msg
    assert checks.check_database_smtp_servers(databases=None) == []  # no database unless asked

    SMTPServerConfig.objects.create(name="primary", host="smtp.rgz.bj")
    assert checks.check_database_smtp_servers(databases=["default"]) == []
    settings.EMAIL_BACKEND = "notifications.backends.SMTPBackend"
    SMTPServerConfig.objects.all().delete()
    assert checks.check_database_smtp_servers(databases=["default"]) == []


def test_a_lease_too_short_for_its_renewals_is_a_warning_and_the_default_minute_is_not(settings):
    """A live drain renews its claims every quarter of the lease, whatever SMTP_TIMEOUT_SECONDS
    and OUTBOX_DRAIN_MAX_SECONDS: they no longer bound it, so the default minute is enough with
    a 30 s SMTP timeout; a lease too short to survive a few slow renewals is not."""
    settings.EMAIL_TIMEOUT, settings.OUTBOX_DRAIN_MAX_SECONDS = 30, 0.5
    settings.OUTBOX_LEASE_SECONDS = 5
    [warning] = checks.check_sending_lease()
    assert warning.id == "notifications.W003" and "OUTBOX_LEASE_SECONDS=5" in warning.msg
    settings.OUTBOX_LEASE_SECONDS = 60  # the default
    assert checks.check_sending_lease() == []


@pytest.mark.parametrize(("environment", "variable"), [("production", "SECRET_KEY"), ("prod", "ENVIRONMENT")])
def test_manage_py_names_a_missing_or_wrong_variable_in_one_line_without_a_traceback(environment, variable):
    """Settings read before Django starts: `manage.py` says what to set, in one line."""
    base_dir = Path(django_settings.BASE_DIR)
    env = {name: value for name, value in os.environ.items()
           if name not in ("SECRET_KEY", "DJANGO_SETTINGS_MODULE") and not name.startswith("PYTEST")}
    result = subprocess.run(
        [sys.executable, str(base_dir / "manage.py"), "check"], cwd=base_dir,
        env={**env, "ENVIRONMENT": environment}, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("Configuration error: ") and variable in line, line
