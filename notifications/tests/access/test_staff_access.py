"""Staff access: `create_staff` and `ensure_admin --reset` print a link that sets a password
once and then expires; no password is printed and no secret reaches a log."""
from __future__ import annotations

import io
import logging
from datetime import datetime, timedelta

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from notifications.logfilters import RedactSecrets

pytestmark = pytest.mark.django_db
PASSWORD = "a-long-enough-passphrase-42"


def run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue().strip(), err.getvalue()


def set_password(client: Client, link: str, password: str = PASSWORD):
    """Follow the link as a browser would: the token moves into the session, then the form."""
    path = link.removeprefix("http://127.0.0.1:8000")
    opened = client.get(path)
    if opened.status_code != 302:
        return opened
    assert opened["Location"].endswith("/set-password/")
    form = client.get(opened["Location"])
    assert form.status_code == 200 and form.context["validlink"]
    return client.post(opened["Location"], {"new_password1": password, "new_password2": password})


def test_create_staff_makes_an_editor_whose_link_sets_a_password_once_then_expires(caplog):
    caplog.set_level(logging.DEBUG)
    link, said = run("create_staff", "ama@rgz.bj", "--group", "Template editors")
    user = get_user_model().objects.get(username="ama@rgz.bj")
    assert user.email == "ama@rgz.bj" and user.is_staff and not user.is_superuser
    assert not user.has_usable_password()
    assert list(user.groups.values_list("name", flat=True)) == ["Template editors"]
    assert link.startswith("http://127.0.0.1:8000/admin/staff-link/") and "\n" not in link
    assert "PASSWORD_RESET_TIMEOUT" in said and link not in said
    token = link.rstrip("/").rsplit("/", 1)[1]

    client = Client()
    done = set_password(client, link)
    assert done.status_code == 302
    page = client.get(done["Location"])
    assert page.status_code == 200 and 'href="/admin/login/"' in page.content.decode()
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    # The editor logs in and reaches the templates.
    login = client.post("/admin/login/", {"username": "ama@rgz.bj", "password": PASSWORD})
    assert login.status_code == 302
    assert client.get("/admin/notifications/emailtemplate/").status_code == 200

    # Once used, the link is dead, in another browser too.
    again = Client().get(link.removeprefix("http://127.0.0.1:8000"))
    assert again.status_code == 200 and not again.context["validlink"]
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    assert token not in caplog.text and PASSWORD not in caplog.text
    assert token not in said


def test_a_link_past_password_reset_timeout_is_refused(monkeypatch):
    link, _ = run("create_staff", "kofi@rgz.bj", "--group", "Auditors")
    later = datetime.now() + timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT + 1)
    monkeypatch.setattr(default_token_generator, "_now", lambda: later)
    page = Client().get(link.removeprefix("http://127.0.0.1:8000"))
    assert page.status_code == 200 and not page.context["validlink"]
    assert not get_user_model().objects.get(username="kofi@rgz.bj").has_usable_password()


def test_create_staff_refuses_an_unknown_group_and_adds_groups_to_an_existing_account():
    with pytest.raises(CommandError, match="'Editors'"):
        run("create_staff", "ama@rgz.bj", "--group", "Editors")
    with pytest.raises(CommandError, match="valid email"):
        run("create_staff", "not-an-address", "--group", "Auditors")
    assert not get_user_model().objects.exists()
    run("create_staff", "ama@rgz.bj", "--group", "Template editors")
    user = get_user_model().objects.get()
    user.set_password(PASSWORD)
    user.save()
    link, said = run("create_staff", "ama@rgz.bj", "--group", "Auditors")
    user.refresh_from_db()
    assert sorted(user.groups.values_list("name", flat=True)) == ["Auditors", "Template editors"]
    assert user.check_password(PASSWORD) and "/admin/staff-link/" in link
    # A service account never becomes a person's login.
    call_command("create_api_key", "billing-service", "--create-user", stdout=io.StringIO(), stderr=io.StringIO())
    with pytest.raises(CommandError, match="billing-service"):
        run("create_staff", "billing@rgz.bj", "--username", "billing-service", "--group", "Auditors")
    service = get_user_model().objects.get(username="billing-service")
    assert not service.is_staff and not service.groups.exists()


def test_ensure_admin_reset_prints_a_link_for_a_lost_password_and_never_a_password(settings):
    first, _ = run("ensure_admin")
    assert "password:" in first
    again, _ = run("ensure_admin")
    assert "ensure_admin --reset" in again
    link, said = run("ensure_admin", "--reset", "--base-url", "https://notify.rgz.bj/")
    assert link.startswith("https://notify.rgz.bj/admin/staff-link/") and "password" not in link
    assert set_password(Client(), link.removeprefix("https://notify.rgz.bj")).status_code == 302
    assert get_user_model().objects.get(username="admin").check_password(PASSWORD)
    with pytest.raises(CommandError, match="'root'"):
        run("ensure_admin", "--reset", "--username", "root")
    settings.ENVIRONMENT = "production"
    with pytest.raises(CommandError, match="--base-url"):
        run("ensure_admin", "--reset")


def test_the_access_log_never_holds_a_set_password_token():
    """runserver's access log goes through the handler that redacts tokens."""
    link, _ = run("create_staff", "ama@rgz.bj", "--group", "Auditors")
    path = link.removeprefix("http://127.0.0.1:8000")
    token = path.rstrip("/").rsplit("/", 1)[1]
    # (pytest adds capturing handlers of its own beside the configured one)
    [handler] = [h for h in logging.getLogger("django.server").handlers if type(h) is logging.StreamHandler]
    assert any(isinstance(f, RedactSecrets) for f in handler.filters)
    record = logging.LogRecord("django.server", logging.INFO, __file__, 1, '"%s" %s %s',
                               (f"GET {path} HTTP/1.1", 302, 0), None)
    assert handler.filter(record)
    assert token not in handler.format(record) and "/admin/staff-link/" in handler.format(record)
    kept = logging.LogRecord("django.server", logging.INFO, __file__, 1, "%s",
                             (path.replace(token, "set-password"),), None)
    handler.filter(kept)
    assert kept.getMessage().endswith("/set-password/")
