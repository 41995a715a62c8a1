"""Who may call the webhooks: basic auth with any of the configured secrets on every route,
no secret outside development refuses everything, SNS messages verified (signature, signing
certificate host, topic), SendGrid's signed webhook verified. A refused request stores
nothing and never gets a 5xx.
"""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.test import Client
from django.utils import timezone

from notifications.models import DeliveryEvent, Message, Status
from notifications.channels.email.sending import send_simple_mail
from notifications.tests.support.http import ESPServer
from notifications.tests.support.sns import CERT_URL, OTHER_TOPIC_ARN, TOPIC_ARN, SNSSigner, basic_auth, post_sns, signing
from notifications.tests.support.webhooks import NEXT_SECRET, SECRET, sendgrid_api, ses_api, ses_delivery
from notifications.channels.email.webhooks import sns

pytestmark = pytest.mark.django_db

SES_ROUTES = ["/api/v1/email/webhook", "/anymail/amazon_ses/tracking/", "/anymail/amazon_ses/inbound/"]
SENDGRID_ROUTES = ["/anymail/sendgrid/tracking/", "/anymail/sendgrid/inbound/"]
ALL_ROUTES = SES_ROUTES + SENDGRID_ROUTES


@pytest.fixture
def signer(settings, tmp_path):
    settings.WEBHOOK_PROVIDERS = ["amazon_ses", "sendgrid"]
    with signing(settings, tmp_path, secrets=[SECRET, NEXT_SECRET]) as signer:
        yield signer


@pytest.fixture
def message(settings, django_capture_on_commit_callbacks) -> Message:
    """A message SES took (anymail's backend, a local SES API)."""
    with ses_api(settings), django_capture_on_commit_callbacks(execute=True):
        [message] = send_simple_mail("jane@example.com", "Sujet", "Texte.")
    return Message.objects.get(pk=message.pk)


@pytest.fixture
def sendgrid_message(settings, django_capture_on_commit_callbacks) -> Message:
    """A message SendGrid took (anymail's backend, a local SendGrid API)."""
    with sendgrid_api(settings), django_capture_on_commit_callbacks(execute=True):
        [message] = send_simple_mail("jane@example.com", "Sujet", "Texte.")
    return Message.objects.get(pk=message.pk)


def sendgrid_delivered(message: Message) -> bytes:
    return json.dumps([{
        "email": message.address, "timestamp": int(time.time()), "event": "delivered",
        "sg_event_id": "sg-1", "sg_message_id": "m1", "notification_id": str(message.pk),
        "response": "250 OK",
    }]).encode()


def nothing_stored(message: Message) -> bool:
    return not DeliveryEvent.objects.exists() and Message.objects.get(pk=message.pk).status == Status.SENT


@pytest.mark.parametrize("route", SES_ROUTES)
def test_without_credentials_sns_gets_a_401_challenge(signer, message, route):
    response = post_sns(Client(), route, signer.notification(ses_delivery(message)), auth=None)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic ")
    assert nothing_stored(message)


@pytest.mark.parametrize("route", ALL_ROUTES)
def test_a_wrong_secret_is_refused_on_every_route(signer, message, route):
    response = Client().post(route, data=b"[]", content_type="application/json", headers=basic_auth("hook:wrong"))
    assert response.status_code == 401
    assert "ANYMAIL_WEBHOOK_SECRET" in response.json()["detail"]
    assert nothing_stored(message)


def test_every_configured_secret_is_accepted_so_secrets_rotate(signer, message):
    assert post_sns(Client(), "/api/v1/email/webhook", signer.notification(ses_delivery(message)),
                    auth=NEXT_SECRET).status_code == 200
    assert Message.objects.get(pk=message.pk).status == Status.DELIVERED


def test_the_secrets_come_comma_separated_from_the_environment(tmp_path):
    """The settings module itself, read in a fresh process from the environment."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.base", "ANYMAIL_WEBHOOK_SECRET": f"{SECRET},{NEXT_SECRET}",
           "EMAIL_SES_SNS_TOPIC_ARNS": f"{TOPIC_ARN},{OTHER_TOPIC_ARN}", "ENVIRONMENT": "development"}
    code = ("import json; from django.conf import settings; print(json.dumps([settings.ANYMAIL['WEBHOOK_SECRET'], "
            "settings.EMAIL_SES_SNS_TOPIC_ARNS]))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[4])
    assert json.loads(out.stdout) == [[SECRET, NEXT_SECRET], [TOPIC_ARN, OTHER_TOPIC_ARN]]


@pytest.mark.parametrize("route", ALL_ROUTES)
# anymail warns that no secret is set: exactly the case this test makes, and refuses.
@pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailInsecureWebhookWarning")
def test_outside_development_a_webhook_without_secret_refuses_every_request(signer, message, settings, route):
    settings.ANYMAIL = {}
    settings.ENVIRONMENT = "production"
    response = post_sns(Client(), route, signer.notification(ses_delivery(message)), auth=SECRET)
    assert response.status_code == 403
    assert "EMAIL_WEBHOOK_SECRET_" in response.json()["detail"]
    assert response.json()["codes"] == {"detail": "webhook_secret_not_set"}
    assert nothing_stored(message)


def test_in_development_a_webhook_without_secret_still_answers(signer, message, settings):
    settings.ANYMAIL = {}
    settings.ENVIRONMENT = "development"
    with pytest.warns(Warning, match="insecure"):
        response = post_sns(Client(), "/api/v1/email/webhook", signer.notification(ses_delivery(message)), auth=None)
    assert response.status_code == 200


@pytest.mark.parametrize("route", SES_ROUTES[:2])
def test_a_forged_signature_is_refused(signer, message, route):
    notification = signer.notification(ses_delivery(message))
    forged = {**notification, "Message": notification["Message"].replace("Delivery", "Bounce", 1)}
    response = post_sns(Client(), route, forged)
    assert response.status_code == 403
    assert "Signature" in response.json()
    assert nothing_stored(message)


def test_a_message_signed_by_another_key_is_refused(signer, message, tmp_path):
    (tmp_path / "other").mkdir()
    impostor = SNSSigner(tmp_path / "other")
    response = post_sns(Client(), "/api/v1/email/webhook", impostor.notification(ses_delivery(message)))
    assert response.status_code == 403
    assert nothing_stored(message)


@pytest.mark.parametrize("cert_url", [
    "https://evil.example.com/SimpleNotificationService.pem",
    "http://sns.eu-west-1.amazonaws.com/SimpleNotificationService.pem",
    "https://sns.eu-west-1.amazonaws.com.evil.example/cert.pem",
])
def test_a_signing_certificate_off_an_sns_https_host_is_never_fetched(signer, message, cert_url, monkeypatch):
    fetched = []
    monkeypatch.setattr(sns.urllib.request, "urlopen", lambda *a, **k: fetched.append(a))
    notification = signer.sign(json.loads(json.dumps(signer.notification(ses_delivery(message)))), cert_url=cert_url)
    response = post_sns(Client(), "/api/v1/email/webhook", notification)
    assert response.status_code == 403
    assert "SigningCertURL" in response.json()
    assert fetched == []
    assert nothing_stored(message)


def test_an_sns_certificate_is_fetched_once_and_cached(signer, message, settings, monkeypatch):
    pem = signer.cert_path.read_bytes()
    settings.EMAIL_SNS_SIGNING_CERTS = []
    fetched = []

    class Response:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self, size):
            return pem

    def urlopen(url, timeout):
        fetched.append(url)
        return Response()

    monkeypatch.setattr(sns.urllib.request, "urlopen", urlopen)
    for _ in range(2):
        assert post_sns(Client(), "/api/v1/email/webhook", signer.notification(ses_delivery(message))).status_code == 200
    assert fetched == [CERT_URL]
    assert DeliveryEvent.objects.count() == 2


@pytest.mark.parametrize("route", SES_ROUTES[:2])
def test_a_message_from_another_topic_is_refused(signer, message, route):
    response = post_sns(Client(), route, signer.notification(ses_delivery(message), topic=OTHER_TOPIC_ARN))
    assert response.status_code == 403
    assert "TopicArn" in response.json()
    assert nothing_stored(message)


def test_a_subscription_from_another_topic_is_never_confirmed(signer, monkeypatch):
    aws = ESPServer().start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_SNS", aws.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    try:
        response = post_sns(Client(), "/api/v1/email/webhook", signer.subscription_confirmation(topic=OTHER_TOPIC_ARN))
        forged = {**signer.subscription_confirmation(), "Token": "another-token"}
        forged_response = post_sns(Client(), "/api/v1/email/webhook", forged)
    finally:
        aws.stop()
    assert (response.status_code, forged_response.status_code) == (403, 403)
    assert aws.requests == []


def test_no_topic_configured_refuses_every_sns_message(signer, message, settings):
    settings.EMAIL_SES_SNS_TOPIC_ARNS = []
    assert post_sns(Client(), "/api/v1/email/webhook", signer.notification(ses_delivery(message))).status_code == 403
    assert nothing_stored(message)


@pytest.mark.parametrize("body", [b"not json", b'{"Type": "Notification"}', b"[1, 2]"])
def test_an_unreadable_sns_body_is_a_400_or_403_never_a_500(signer, body):
    response = Client().post("/api/v1/email/webhook", data=body, content_type="text/plain",
                             headers={"x-amz-sns-message-type": "Notification", **basic_auth(SECRET)})
    assert 400 <= response.status_code < 500
    assert not DeliveryEvent.objects.exists()


def test_an_unreadable_sendgrid_body_is_a_400(signer):
    response = Client().post("/anymail/sendgrid/tracking/", data=b"{not json", content_type="application/json",
                             headers=basic_auth(SECRET))
    assert response.status_code == 400


@pytest.fixture
def sendgrid_key(settings):
    """SendGrid's signed event webhook: an ECDSA P-256 key; anymail takes the public key as
    SendGrid shows it (base64 DER), https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features"""
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    settings.ANYMAIL = {**settings.ANYMAIL, "SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY": base64.b64encode(public).decode()}
    return key


def signed_headers(key, body: bytes, timestamp: str) -> dict:
    signature = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp}


def test_sendgrid_signed_webhook_is_verified_when_its_key_is_set(signer, sendgrid_message, sendgrid_key):
    message = sendgrid_message
    body = sendgrid_delivered(message)
    stamp = str(int(timezone.now().timestamp()))
    good = Client().post("/anymail/sendgrid/tracking/", data=body, content_type="application/json",
                         headers={**basic_auth(SECRET), **signed_headers(sendgrid_key, body, stamp)})
    assert good.status_code == 200
    assert Message.objects.get(pk=message.pk).status == Status.DELIVERED


def test_sendgrid_forged_or_unsigned_webhook_is_refused(signer, sendgrid_message, sendgrid_key):
    message = sendgrid_message
    body = sendgrid_delivered(message)
    stamp = str(int(timezone.now().timestamp()))
    tampered = body.replace(b"delivered", b"bounce")
    forged = Client().post("/anymail/sendgrid/tracking/", data=tampered, content_type="application/json",
                           headers={**basic_auth(SECRET), **signed_headers(sendgrid_key, body, stamp)})
    unsigned = Client().post("/anymail/sendgrid/tracking/", data=body, content_type="application/json",
                             headers=basic_auth(SECRET))
    assert (forged.status_code, unsigned.status_code) == (400, 400)
    assert nothing_stored(message)


def test_system_checks_name_what_the_webhooks_need(settings, tmp_path):
    from notifications.checks import check_webhook_settings

    settings.ENVIRONMENT = "production"
    settings.ANYMAIL = {}
    settings.EMAIL_BACKEND = "anymail.backends.amazon_ses.EmailBackend"
    settings.WEBHOOK_PROVIDERS = []
    settings.EMAIL_SES_SNS_TOPIC_ARNS = []
    settings.EMAIL_SNS_SIGNING_CERTS = [f"{CERT_URL}={tmp_path / 'missing.pem'}"]
    problems = check_webhook_settings()
    assert sorted(problem.id for problem in problems) == ["notifications.E030", "notifications.W030",
                                                          "notifications.W031"]
    assert "EMAIL_WEBHOOK_SECRET_AMAZON_SES" in next(p.msg for p in problems if p.id == "notifications.W030")
    (tmp_path / "missing.pem").write_text("pem")
    settings.EMAIL_WEBHOOK_SECRET_AMAZON_SES = [SECRET]
    settings.EMAIL_SES_SNS_TOPIC_ARNS = [TOPIC_ARN]
    assert check_webhook_settings() == []
