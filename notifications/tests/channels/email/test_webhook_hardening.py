"""Issue 16, the webhook half: each finding reproduced against the route as a provider (or an
attacker holding a secret) reaches it, and the answer it now gets.

2. an event changes only a message its own provider sent (that scenario, for each provider, is
   in webhook_cases.py); unconfigured ESP routes are 404; per-provider secrets, the old shared
   one still accepted with a check's warning;
3. suppression only of a message's own recipients; an unmatched event suppresses nobody;
4. no 5xx: deep or NUL JSON of any content type, out-of-range timestamps, a signed SNS
   `Message` holding either; the signing certificate cache's bound and remembered failure;
5. 4xx bodies carry our messages and codes, never a Python exception's text;
7. a large SendGrid POST costs a bounded number of SQL statements.
"""
from __future__ import annotations

import json
import re
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from notifications.checks import check_webhook_settings
from notifications.models import DeliveryEvent, Message, Status, Suppression
from notifications.channels.email.sending import send_simple_mail
from notifications.tests.support.sns import CERT_URL, REGION, basic_auth, post_sns, signing
from notifications.tests.support.webhooks import SECRET, sendgrid_api, ses_api, ses_delivery
from notifications.channels.email.webhooks import sns

pytestmark = pytest.mark.django_db

SES_SECRET = "ses-hook:only-for-ses"
SENDGRID_SECRET = "sendgrid-hook:only-for-sendgrid"
SENDGRID_HOOK = "/anymail/sendgrid/tracking/"
SES_HOOKS = ["/api/v1/email/webhook", "/anymail/amazon_ses/tracking/"]
ALL_ROUTES = [*SES_HOOKS, "/anymail/amazon_ses/inbound/", SENDGRID_HOOK, "/anymail/sendgrid/inbound/"]
STRANGER = "ceo@company.test"
# A Python exception's class name or text, as the attacks of issue 16 found them in 4xx bodies.
PYTHON_TEXT = re.compile(r"[A-Z][A-Za-z]*(Error|Exception)\b|has no attribute|Traceback|urlopen|Expecting value")


@pytest.fixture
def both_enabled(settings):
    settings.WEBHOOK_PROVIDERS = ["amazon_ses", "sendgrid"]
    settings.EMAIL_WEBHOOK_SECRET_AMAZON_SES = [SES_SECRET]
    settings.EMAIL_WEBHOOK_SECRET_SENDGRID = [SENDGRID_SECRET]


@pytest.fixture
def signer(settings, tmp_path, both_enabled):
    with signing(settings, tmp_path) as signer:
        yield signer


def send(settings, capture, api, to: str = "jane@example.com", **options) -> Message:
    with api(settings), capture(execute=True):
        [message] = send_simple_mail(to, "Votre facture", "Bonjour.", **options)
    return Message.objects.get(pk=message.pk)


def sendgrid_event(message: Message | None, kind: str, *, email: str = "", **fields) -> dict:
    return {"email": email or (message.address if message else "jane@example.com"), "timestamp": 1513299569,
            "event": kind, "sg_event_id": uuid.uuid4().hex, "sg_message_id": "sg-1.filter0001",
            **({"notification_id": str(message.pk)} if message else {}), **fields}


def post_sendgrid(events, *, secret: str = SENDGRID_SECRET, content_type: str = "application/json",
                  body: bytes | None = None):
    data = body if body is not None else json.dumps(events).encode()
    return Client().post(SENDGRID_HOOK, data=data, content_type=content_type, headers=basic_auth(secret))


# --- 2. events stay with their provider -----------------------------------------------------

def test_each_message_records_the_provider_that_took_it(settings, django_capture_on_commit_callbacks, smtp_backend):
    smtp = send(settings, django_capture_on_commit_callbacks, lambda s: _no_api())
    ses = send(settings, django_capture_on_commit_callbacks, ses_api)
    sendgrid = send(settings, django_capture_on_commit_callbacks, sendgrid_api)
    assert [smtp.provider, ses.provider, sendgrid.provider] == ["smtp", "amazon_ses", "sendgrid"]


def test_a_server_named_like_an_esp_in_the_admin_is_still_smtp(database_smtp, smtp_server,
                                                               django_capture_on_commit_callbacks):
    """`sent_via` is the name staff give a server; the key comes from its host."""
    from notifications.models import SMTPServerConfig

    SMTPServerConfig.objects.create(name="SendGrid", host=smtp_server.host, port=smtp_server.port,
                                    security="none", order=1)
    with django_capture_on_commit_callbacks(execute=True):
        [message] = send_simple_mail("jane@example.com", "Sujet", "Texte.")
    message.refresh_from_db()
    assert (message.status, message.sent_via, message.provider) == (Status.SENT, "SendGrid", "smtp")


def test_an_event_kept_before_its_message_was_sent_is_applied_only_if_that_provider_sent_it(
        settings, both_enabled, django_capture_on_commit_callbacks):
    """A SendGrid event may come before the drain records its message sent: it is kept
    (`pending`) and applied once the drain has. If the message left through another provider
    meanwhile (SMTP: a failover, a backend changed), the event is not applied."""
    from django.utils import timezone

    from notifications.core.outbox import lifecycle
    from notifications.core import tracking

    with sendgrid_api(settings):
        [queued] = send_simple_mail("jane@example.com", "Votre facture", "Bonjour.")  # not drained: on_commit not run
        with django_capture_on_commit_callbacks(execute=True):
            assert post_sendgrid([sendgrid_event(queued, "bounce", type="bounce")]).status_code == 200
    assert DeliveryEvent.objects.get().pending
    [claimed] = lifecycle.claim_due(lane=queued.lane, limit=1)
    # What the drain does once the message has left, here through SMTP.
    lifecycle.record_sent([lifecycle.Sent(claimed.pk, "<x@rgz.bj>", "relay", claimed.from_email, 1, timezone.now(),
                                          provider="smtp")])
    assert tracking.apply_pending([claimed.pk]) == 1
    message = Message.objects.get(pk=claimed.pk)
    assert (message.status, message.provider) == (Status.SENT, "smtp")
    assert not DeliveryEvent.objects.get().pending


@pytest.mark.parametrize("route", ALL_ROUTES)
def test_an_unconfigured_esps_route_is_a_404(settings, route):
    """The test settings send through locmem, with no SNS topic and no SendGrid key."""
    settings.ANYMAIL = {"WEBHOOK_SECRET": [SECRET]}
    response = Client().post(route, data=b"[]", content_type="application/json", headers=basic_auth(SECRET))
    assert response.status_code == 404
    assert response.json()["codes"] == {"detail": "webhook_not_enabled"}


def test_a_providers_secret_opens_only_its_own_routes(settings, signer, django_capture_on_commit_callbacks):
    settings.ANYMAIL = {"WEBHOOK_SECRET": [SECRET]}  # the old shared one: no longer taken where a provider has its own
    message = send(settings, django_capture_on_commit_callbacks, sendgrid_api)
    events = [sendgrid_event(message, "delivered")]
    assert post_sendgrid(events, secret=SES_SECRET).status_code == 401
    assert post_sendgrid(events, secret=SECRET).status_code == 401
    refused = post_sns(Client(), SES_HOOKS[0], signer.notification(ses_delivery(message)), auth=SENDGRID_SECRET)
    assert refused.status_code == 401 and "EMAIL_WEBHOOK_SECRET_AMAZON_SES" in refused.json()["detail"]
    assert post_sendgrid(events).status_code == 200
    assert Message.objects.get(pk=message.pk).status == Status.DELIVERED


def test_the_old_shared_secret_still_works_with_the_checks_warning(settings, tmp_path,
                                                                  django_capture_on_commit_callbacks):
    """An upgrade loses no event: a provider without its own secret still takes ANYMAIL_WEBHOOK_SECRET."""
    with signing(settings, tmp_path, secrets=[SECRET]) as signer:
        message = send(settings, django_capture_on_commit_callbacks, ses_api)
        response = post_sns(Client(), SES_HOOKS[1], signer.notification(ses_delivery(message)), auth=SECRET)
    assert response.status_code == 200
    assert Message.objects.get(pk=message.pk).status == Status.DELIVERED
    assert "notifications.W032" in {problem.id for problem in check_webhook_settings()}
    settings.ANYMAIL = {}
    assert "notifications.W032" not in {problem.id for problem in check_webhook_settings()}


# --- 3. suppression only of the message's own recipients -------------------------------------

def test_a_bounce_naming_a_stranger_suppresses_nobody_and_deactivates_nobody(settings, signer,
                                                                            django_capture_on_commit_callbacks):
    """Finding 3: a bounce for a real message id naming `ceo@company.test` suppressed it for all mail."""
    settings.EMAIL_DEACTIVATE_USER_ON_PERMANENT_FAILURE = True
    ceo = get_user_model().objects.create_user("ceo", email=STRANGER, password="x")
    message = send(settings, django_capture_on_commit_callbacks, sendgrid_api)
    with django_capture_on_commit_callbacks(execute=True):
        assert post_sendgrid([sendgrid_event(message, "bounce", email=STRANGER, type="bounce"),
                              sendgrid_event(message, "spamreport", email=STRANGER)]).status_code == 200
    assert not Suppression.objects.exists()
    ceo.refresh_from_db()
    assert ceo.is_active
    assert Message.objects.get(pk=message.pk).status == Status.SENT
    assert DeliveryEvent.objects.filter(message=message, recipient=STRANGER).count() == 2


def test_a_bounce_of_a_cc_address_suppresses_it(settings, both_enabled, default_templates,
                                               django_capture_on_commit_callbacks):
    from notifications.channels.email.sending import send_mail_template
    from notifications.tests.support.payloads import INVOICE_VARS

    with sendgrid_api(settings), django_capture_on_commit_callbacks(execute=True):
        [message] = send_mail_template("billing_invoice_monthly", "jane@example.com", INVOICE_VARS,
                                       cc=["Richard@Example.com"])
    message.refresh_from_db()
    assert message.status == Status.SENT
    with django_capture_on_commit_callbacks(execute=True):
        post_sendgrid([sendgrid_event(message, "bounce", email="richard@example.com", type="bounce")])
    assert list(Suppression.objects.values_list("address", "reason")) == [("richard@example.com", "bounce")]
    assert Message.objects.get(pk=message.pk).status == Status.SENT  # the recipient's own copy


def test_an_unsubscribe_matching_no_message_is_stored_and_suppresses_nobody(both_enabled,
                                                                            django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = post_sendgrid([sendgrid_event(None, "unsubscribe", email=STRANGER),
                                  sendgrid_event(None, "bounce", email=STRANGER, type="bounce")])
    assert response.status_code == 200
    assert DeliveryEvent.objects.filter(message=None, recipient=STRANGER).count() == 2
    assert not Suppression.objects.exists()


# --- 4 and 5. no 5xx, and our own words in every 4xx ------------------------------------------

DEEP = "[" * 5000 + "]" * 5000


@pytest.mark.parametrize("route", [*SES_HOOKS, "/anymail/amazon_ses/inbound/", SENDGRID_HOOK])
@pytest.mark.parametrize("content_type", ["text/plain; charset=UTF-8", "application/json", "application/octet-stream"])
def test_json_nested_5000_deep_is_a_400_whatever_its_content_type(signer, route, content_type):
    secret = SENDGRID_SECRET if "sendgrid" in route else SES_SECRET
    response = Client().post(route, data=DEEP.encode(), content_type=content_type,
                             headers={"x-amz-sns-message-type": "Notification", **basic_auth(secret)})
    assert response.status_code == 400
    assert "nesting_too_deep" in json.dumps(response.json()["codes"])
    assert not DeliveryEvent.objects.exists()


@pytest.mark.parametrize("stamp", [1e20, -1e18, 1e300, "soon", True])
def test_a_sendgrid_timestamp_out_of_range_is_a_400(signer, stamp, settings, django_capture_on_commit_callbacks):
    message = send(settings, django_capture_on_commit_callbacks, sendgrid_api)
    response = post_sendgrid([sendgrid_event(message, "delivered"), sendgrid_event(message, "bounce", timestamp=stamp)])
    assert response.status_code == 400
    assert response.json()["codes"] == {"timestamp": ["invalid_timestamp"]}
    assert not DeliveryEvent.objects.exists()


@pytest.mark.parametrize("body", [
    b'[{"email": "a@b.bj", "timestamp": 1513299569, "event": "delivered", "reason": "x\\u0000y"}]',
    b'[{"email": "a@b.bj", "timestamp": 1513299569, "event": "delivered", "reason": "x\x00y"}]',
])
def test_a_nul_in_a_text_plain_sendgrid_event_is_a_400(signer, body):
    response = post_sendgrid(None, body=body, content_type="text/plain")
    assert response.status_code == 400
    assert "unstorable_text" in json.dumps(response.json()["codes"])
    assert not DeliveryEvent.objects.exists()


@pytest.mark.parametrize("inner", ['{"notificationType": "Delivery", "mail": {"x": "a\\u0000b"}}', DEEP])
def test_a_signed_sns_message_holding_a_nul_or_deep_json_is_a_400(signer, inner):
    response = post_sns(Client(), SES_HOOKS[0], signer.notification(inner), auth=SES_SECRET)
    assert response.status_code == 400
    assert list(response.json()["codes"]) == ["Message"]
    assert not DeliveryEvent.objects.exists()


HOSTILE_BODIES = [
    b"not json", b"{not json", b"\xff\xfe\x00garbage", b"[1, 2]", b'{"Type": "Notification"}', b"[]", b"{}",
    b'[{"event": "delivered"}]', b'[{"email": 1, "timestamp": "x"}]', b"[[[]]]", b'"a string"', b"12",
    b'{"Type": ["Notification"], "TopicArn": {"a": 1}}', b'[{"timestamp": 1e999}]', b"null",
]


@pytest.mark.parametrize("route", [*SES_HOOKS, "/anymail/amazon_ses/inbound/", SENDGRID_HOOK,
                                   "/anymail/sendgrid/inbound/"])
def test_the_hostile_corpus_gets_our_own_words_and_codes_never_python_text(signer, route):
    secret = SENDGRID_SECRET if "sendgrid" in route else SES_SECRET
    for body in HOSTILE_BODIES:
        for content_type in ("application/json", "text/plain"):
            response = Client().post(route, data=body, content_type=content_type,
                                     headers={"x-amz-sns-message-type": "Notification", **basic_auth(secret)})
            assert response.status_code < 500, (body, response.content)
            if response.status_code >= 400:
                text = response.content.decode()
                assert not PYTHON_TEXT.search(text), (body, text)
                assert response.json()["codes"], (body, text)


def test_the_certificate_cache_is_bounded_least_recently_used_first(signer, settings, monkeypatch, django_capture_on_commit_callbacks):
    message = send(settings, django_capture_on_commit_callbacks, ses_api)
    monkeypatch.setattr(sns, "MAX_CACHED_CERTIFICATES", 2)
    urls = [f"https://sns.{REGION}.amazonaws.com/SimpleNotificationService-{n}.pem" for n in range(3)]
    settings.EMAIL_SNS_SIGNING_CERTS = [f"{url}={signer.cert_path}" for url in urls]
    for url in [urls[0], urls[1], urls[0], urls[2]]:
        notification = signer.sign(signer.notification(ses_delivery(message)), cert_url=url)
        assert post_sns(Client(), SES_HOOKS[0], notification, auth=SES_SECRET).status_code == 200
    assert sns.cached_certificate_urls() == [urls[0], urls[2]]  # urls[1], least recently used, dropped


def test_a_failed_certificate_fetch_is_remembered_for_a_while(signer, settings, monkeypatch,
                                                             django_capture_on_commit_callbacks):
    message = send(settings, django_capture_on_commit_callbacks, ses_api)
    settings.EMAIL_SNS_SIGNING_CERTS = []
    fetches = []
    clock = [1000.0]

    def urlopen(url, timeout):
        fetches.append(url)
        raise OSError("timed out")

    monkeypatch.setattr(sns.urllib.request, "urlopen", urlopen)
    monkeypatch.setattr(sns.time, "monotonic", lambda: clock[0])
    notification = signer.notification(ses_delivery(message))
    answers = [post_sns(Client(), SES_HOOKS[0], notification, auth=SES_SECRET) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [503, 503, 503]
    assert answers[0].json()["codes"] == {"SigningCertURL": ["sns_certificate_unavailable"]}
    assert "timed out" not in answers[0].content.decode()
    assert fetches == [CERT_URL]  # once, not once per request
    clock[0] += sns.FAILED_FETCH_SECONDS + 1
    assert post_sns(Client(), SES_HOOKS[0], notification, auth=SES_SECRET).status_code == 503
    assert fetches == [CERT_URL, CERT_URL]  # tried again once the failure is forgotten
    assert not DeliveryEvent.objects.exists()


# --- 7. a large SendGrid POST in bulk --------------------------------------------------------

def test_a_2000_event_sendgrid_post_runs_a_bounded_number_of_statements(settings, both_enabled,
                                                                       django_capture_on_commit_callbacks):
    settings.EMAIL_DEACTIVATE_USER_ON_PERMANENT_FAILURE = True
    with sendgrid_api(settings), django_capture_on_commit_callbacks(execute=True):
        messages = send_simple_mail([f"user{n}@example.com" for n in range(50)], "Sujet", "Texte.")
    messages = list(Message.objects.filter(pk__in=[m.pk for m in messages]).order_by("address"))
    assert {m.status for m in messages} == {Status.SENT}

    def batch(size: int) -> list[dict]:
        events = []
        for n, message in enumerate(messages):
            outcome = "bounce" if n % 10 == 0 else "spamreport" if n % 10 == 1 else "delivered"
            events += [sendgrid_event(message, "processed"), sendgrid_event(message, outcome, type="bounce")]
            if n % 10 == 2:
                events.append(sendgrid_event(message, "unsubscribe"))
        kinds = ["open", "click", "deferred"]
        while len(events) < size:
            message = messages[len(events) % len(messages)]
            events.append(sendgrid_event(message, kinds[len(events) % 3], url="https://rgz.bj/"))
        events.append(sendgrid_event(None, "bounce", email=STRANGER, type="bounce"))  # unmatched
        return events

    events = batch(2000)
    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=True):
        response = post_sendgrid(events)
    assert response.status_code == 200
    assert DeliveryEvent.objects.count() == len(events)
    statuses = dict(Message.objects.filter(address__in=["user0@example.com", "user1@example.com",
                                                                     "user2@example.com"])
                    .values_list("address", "status"))
    assert statuses == {"user0@example.com": Status.BOUNCED, "user1@example.com": Status.COMPLAINT,
                        "user2@example.com": Status.DELIVERED}
    assert Suppression.objects.filter(scope="all").count() == 10
    assert Suppression.objects.filter(scope="marketing").count() == 5
    assert len(queries) <= 30, "\n".join(q["sql"][:150] for q in queries.captured_queries)
    # The same again is a replay: stored once, one more read of what is there.
    with CaptureQueriesContext(connection) as replay:
        assert post_sendgrid(events).status_code == 200
    assert DeliveryEvent.objects.count() == len(events)
    assert len(replay) <= 10


def _no_api():
    """`send`'s api for mail through the test's SMTP server (the backend already set)."""
    from contextlib import nullcontext

    return nullcontext()
