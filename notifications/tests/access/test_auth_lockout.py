"""Failed authentication is throttled (issue 16, finding 6): the admin login per (username,
address), API keys and webhook passwords per address; a provider-signed webhook never.

Each case goes through the route as a client reaches it, from the address Django's test
client claims (`REMOTE_ADDR`).
"""
from __future__ import annotations

import io
import json
import time

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client, RequestFactory
from django.utils import timezone

from notifications.access import lockout
from notifications.access.groups import SENDERS
from notifications.models import Message, Status
from notifications.channels.email.sending import send_simple_mail
from notifications.tests.support.api import create_key, make_user
from notifications.tests.support.sns import basic_auth, post_sns, signing
from notifications.tests.support.webhooks import SECRET, sendgrid_api, ses_api, ses_delivery
from notifications.tests.channels.email.test_webhook_security import sendgrid_delivered, sendgrid_key, signed_headers  # noqa: F401

pytestmark = pytest.mark.django_db

ATTACKER = "203.0.113.7"
ELSEWHERE = "198.51.100.20"
PASSWORD = "correct horse battery staple"


def client_from(address: str, **headers) -> Client:
    return Client(REMOTE_ADDR=address, headers={"Accept-Language": "en", **headers})


# --- The admin login ----------------------------------------------------------------------------


@pytest.fixture
def admin_account(settings):
    settings.AUTH_LOCKOUT_LOGIN_FAILURES = 5
    settings.AUTH_LOCKOUT_WINDOW_SECONDS = 900
    return get_user_model().objects.create_superuser("admin", "admin@rgz.bj", PASSWORD)


def log_in(client: Client, username: str, password: str):
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password})


def test_the_login_one_past_the_threshold_is_throttled_while_the_admin_logs_in_from_elsewhere(admin_account):
    attacker = client_from(ATTACKER)
    for _ in range(5):
        wrong = log_in(attacker, "admin", "guess")
        assert wrong.status_code == 200 and "_auth_user_id" not in attacker.session
    throttled = log_in(attacker, "admin", PASSWORD)  # the right password, from the locked pair
    assert throttled.status_code == 429
    assert 0 < int(throttled["Retry-After"]) <= 900
    assert "Too many failed logins" in throttled.content.decode()
    assert "_auth_user_id" not in attacker.session

    admin = client_from(ELSEWHERE)
    assert log_in(admin, "admin", PASSWORD).status_code == 302
    assert admin.get("/admin/").status_code == 200


def test_the_lockout_counts_a_username_from_one_address_only(admin_account):
    get_user_model().objects.create_superuser("other", "other@rgz.bj", PASSWORD)
    attacker = client_from(ATTACKER)
    for _ in range(5):
        log_in(attacker, "ADMIN", "guess")  # case folded: `ADMIN` and `admin` are one count
    assert log_in(attacker, "admin", PASSWORD).status_code == 429
    assert log_in(client_from(ATTACKER), "other", PASSWORD).status_code == 302


def test_a_successful_login_starts_the_count_afresh(admin_account):
    client = client_from(ATTACKER)
    for _ in range(4):
        log_in(client, "admin", "typo")
    assert log_in(client, "admin", PASSWORD).status_code == 302
    client.logout()
    for _ in range(4):
        log_in(client, "admin", "typo")
    assert log_in(client, "admin", PASSWORD).status_code == 302


def test_staff_list_and_lift_a_lockout_with_the_unlock_command(admin_account):
    attacker = client_from(ATTACKER)
    for _ in range(5):
        log_in(attacker, "admin", "guess")
    listed = io.StringIO()
    call_command("unlock", "--list", stdout=listed)
    assert f"login: admin @ {ATTACKER}" in listed.getvalue()
    lifted = io.StringIO()
    call_command("unlock", "--username", "admin", stdout=lifted)
    assert "1 lockouts lifted" in lifted.getvalue()
    assert log_in(attacker, "admin", PASSWORD).status_code == 302
    empty = io.StringIO()
    call_command("unlock", "--list", stdout=empty)
    assert "No lockout in force" in empty.getvalue()


# --- The client's address ---------------------------------------------------------------------


def request_from(remote: str, forwarded: str | None = None):
    extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
    return RequestFactory().get("/", REMOTE_ADDR=remote, **extra)


@pytest.mark.parametrize(("remote", "forwarded", "client"), [
    (ATTACKER, "1.2.3.4", ATTACKER),                             # no proxy trusted: the header is the client's word
    ("10.0.0.2", "1.2.3.4, 203.0.113.7", "203.0.113.7"),        # our proxy appended the real peer
    ("10.0.0.2", "203.0.113.7, 10.0.0.9", "203.0.113.7"),       # two of our proxies
    ("10.0.0.2", None, "10.0.0.2"),
    ("10.0.0.2", "not-an-address", "10.0.0.2"),
    ("10.0.0.2", "2001:db8::1", "2001:db8::1"),
])
def test_the_client_address_is_read_through_the_trusted_proxies(settings, remote, forwarded, client):
    settings.AUTH_TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert lockout.client_ip(request_from(remote, forwarded)) == client


def test_a_forged_x_forwarded_for_does_not_escape_the_lockout(admin_account):
    for attempt in range(6):
        response = client_from(ATTACKER, **{"X-Forwarded-For": f"192.0.2.{attempt}"}).post(
            "/admin/login/", {"username": "admin", "password": "guess" if attempt < 5 else PASSWORD})
    assert response.status_code == 429


def test_behind_a_trusted_proxy_each_client_is_counted_apart(admin_account, settings):
    settings.AUTH_TRUSTED_PROXIES = ["10.0.0.1"]
    for _ in range(5):
        log_in(client_from("10.0.0.1", **{"X-Forwarded-For": ATTACKER}), "admin", "guess")
    assert log_in(client_from("10.0.0.1", **{"X-Forwarded-For": ATTACKER}), "admin", PASSWORD).status_code == 429
    assert log_in(client_from("10.0.0.1", **{"X-Forwarded-For": ELSEWHERE}), "admin", PASSWORD).status_code == 302


# --- API keys ---------------------------------------------------------------------------------


@pytest.fixture
def api_key(settings, default_templates) -> str:
    settings.AUTH_LOCKOUT_API_FAILURES = 3
    return create_key(make_user("billing-service", SENDERS))


def get_templates(address: str, key: str):
    return client_from(address, Authorization=f"Bearer {key}").get("/api/v1/email/templates")


def test_wrong_api_keys_lock_the_address_with_a_json_429(api_key):
    for guess in ("ntf_live_a", "ntf_live_b", "ntf_live_c"):
        assert get_templates(ATTACKER, guess).status_code == 401
    refused = get_templates(ATTACKER, api_key)  # even the right key, while locked
    assert refused.status_code == 429
    assert refused["Content-Type"] == "application/json"
    assert refused.json()["codes"] == {"detail": "too_many_failed_authentications"}
    assert 0 < int(refused["Retry-After"]) <= 900
    assert get_templates(ELSEWHERE, api_key).status_code == 200


def test_a_request_without_a_key_is_not_a_failed_guess(api_key):
    for _ in range(5):
        assert client_from(ATTACKER).get("/api/v1/email/templates").status_code == 401
    assert get_templates(ATTACKER, api_key).status_code == 200


def test_unlock_by_address_lifts_the_api_lockout(api_key):
    for _ in range(3):
        get_templates(ATTACKER, "ntf_live_wrong")
    call_command("unlock", "--ip", ATTACKER, stdout=io.StringIO())
    assert get_templates(ATTACKER, api_key).status_code == 200


# --- Webhook passwords -----------------------------------------------------------------------


@pytest.fixture
def signer(settings, tmp_path):
    settings.AUTH_LOCKOUT_WEBHOOK_FAILURES = 3
    settings.WEBHOOK_PROVIDERS = ["amazon_ses", "sendgrid"]  # both routes exist (issue 16)
    with signing(settings, tmp_path, secrets=[SECRET]) as signer:
        yield signer


def sent_through(esp_api, settings, capture) -> Message:
    """A message sent through `esp_api`'s provider: only its own route's events apply to it."""
    with esp_api(settings), capture(execute=True):
        [message] = send_simple_mail("jane@example.com", "Sujet", "Texte.")
    return Message.objects.get(pk=message.pk)


@pytest.fixture
def ses_message(settings, django_capture_on_commit_callbacks) -> Message:
    return sent_through(ses_api, settings, django_capture_on_commit_callbacks)


@pytest.fixture
def sendgrid_message(settings, django_capture_on_commit_callbacks) -> Message:
    return sent_through(sendgrid_api, settings, django_capture_on_commit_callbacks)


def lock_webhooks_for(address: str) -> None:
    for _ in range(3):
        response = client_from(address).post("/anymail/sendgrid/tracking/", data=b"[]", content_type="application/json",
                                              headers=basic_auth("hook:guess"))
        assert response.status_code == 401


def test_wrong_webhook_passwords_lock_the_address_with_a_json_429(signer, sendgrid_message):
    lock_webhooks_for(ATTACKER)
    refused = client_from(ATTACKER).post("/anymail/sendgrid/tracking/", data=sendgrid_delivered(sendgrid_message),
                                         content_type="application/json", headers=basic_auth(SECRET))
    assert refused.status_code == 429
    assert refused.json()["codes"] == {"detail": "too_many_failed_authentications"}
    assert 0 < int(refused["Retry-After"]) <= 900
    assert Message.objects.get(pk=sendgrid_message.pk).status == Status.SENT
    elsewhere = client_from(ELSEWHERE).post("/anymail/sendgrid/tracking/", data=sendgrid_delivered(sendgrid_message),
                                            content_type="application/json", headers=basic_auth(SECRET))
    assert elsewhere.status_code == 200


def test_snss_challenge_without_credentials_is_not_counted(signer, ses_message):
    for _ in range(5):
        response = post_sns(client_from(ATTACKER), "/anymail/amazon_ses/tracking/",
                            signer.notification(ses_delivery(ses_message)), auth=None)
        assert response.status_code == 401
    assert lockout.retry_after(scope=lockout.WEBHOOK, ip=ATTACKER) is None


def test_a_signed_sns_message_is_never_throttled(signer, ses_message):
    lock_webhooks_for(ATTACKER)  # say, a proxy that makes every client one address
    response = post_sns(client_from(ATTACKER), "/anymail/amazon_ses/tracking/", signer.notification(ses_delivery(ses_message)))
    assert response.status_code == 200
    assert Message.objects.get(pk=ses_message.pk).status == Status.DELIVERED
    forged = signer.notification(ses_delivery(ses_message))
    forged["Message"] = forged["Message"].replace("Delivery", "Bounce")
    assert post_sns(client_from(ATTACKER), "/anymail/amazon_ses/tracking/", forged).status_code == 429


def test_a_signed_sendgrid_webhook_is_never_throttled(signer, sendgrid_message, sendgrid_key):  # noqa: F811
    lock_webhooks_for(ATTACKER)
    body = sendgrid_delivered(sendgrid_message)
    stamp = str(int(timezone.now().timestamp()))
    signed = client_from(ATTACKER).post("/anymail/sendgrid/tracking/", data=body, content_type="application/json",
                                        headers={**basic_auth(SECRET), **signed_headers(sendgrid_key, body, stamp)})
    assert signed.status_code == 200
    assert Message.objects.get(pk=sendgrid_message.pk).status == Status.DELIVERED
    unsigned = client_from(ATTACKER).post("/anymail/sendgrid/tracking/", data=body, content_type="application/json",
                                          headers=basic_auth(SECRET))
    assert unsigned.status_code == 429


def test_a_lockout_ends_after_its_window(api_key, settings):
    settings.AUTH_LOCKOUT_WINDOW_SECONDS = 1
    for _ in range(3):
        get_templates(ATTACKER, "ntf_live_wrong")
    assert get_templates(ATTACKER, api_key).status_code == 429
    time.sleep(1.1)
    assert get_templates(ATTACKER, api_key).status_code == 200
    assert json.loads(get_templates(ATTACKER, "ntf_live_wrong").content)["codes"]["detail"] == "invalid_api_key"


def test_a_bad_proxy_entry_or_limit_fails_the_system_check(settings):
    from notifications.checks import check_lockout_settings

    assert check_lockout_settings() == []
    settings.AUTH_TRUSTED_PROXIES = ["10.0.0.0/8", "proxy.internal"]
    settings.AUTH_LOCKOUT_API_FAILURES = 0
    problems = check_lockout_settings()
    assert [problem.id for problem in problems] == ["notifications.E040", "notifications.E041"]
    assert "'proxy.internal'" in problems[0].msg and "AUTH_LOCKOUT_API_FAILURES" in problems[1].msg


def test_a_per_process_cache_in_production_is_warned_of(settings):
    from notifications.checks import check_lockout_settings

    settings.ENVIRONMENT = "production"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert [problem.id for problem in check_lockout_settings()] == ["notifications.W040"]
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:6379/1"}}
    assert check_lockout_settings() == []
    settings.ENVIRONMENT = "development"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert check_lockout_settings() == []


def test_an_administrator_lists_and_lifts_a_lockout_in_the_admin(admin_account, admin_client):
    attacker = client_from(ATTACKER)
    for _ in range(5):
        log_in(attacker, "admin", "guess")
    keys = admin_client.get("/admin/notifications/apikey/")
    assert 'href="/admin/notifications/apikey/lockouts/"' in keys.content.decode()
    page = admin_client.get("/admin/notifications/apikey/lockouts/")
    assert page.status_code == 200
    assert f"<td>admin</td><td>{ATTACKER}</td>" in page.content.decode()
    lifted = admin_client.post("/admin/notifications/apikey/lockouts/",
                               {"scope": "login", "username": "admin", "ip": ATTACKER}, follow=True)
    assert "Lockout lifted" in lifted.content.decode() and "No lockout in force." in lifted.content.decode()
    assert log_in(attacker, "admin", PASSWORD).status_code == 302


def test_staff_without_the_key_permission_cannot_see_or_lift_lockouts(admin_account, client):
    from notifications.access.groups import AUDITORS

    auditor = make_user("auditor", AUDITORS)
    auditor.is_staff = True
    auditor.save()
    client.force_login(auditor)
    assert client.get("/admin/notifications/apikey/lockouts/").status_code == 403
    assert client.post("/admin/notifications/apikey/lockouts/", {"scope": "login", "ip": ATTACKER}).status_code == 403
