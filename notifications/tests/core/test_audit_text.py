"""Stored audit text (issue 19): a message's error, its attempts' errors and our event
descriptions are stored as a code and parameters and shown in the language of whoever reads
them, on the desk and in the API, in French and in English; a server's or provider's own
reply is kept as it came; statuses are shown by their labels, numbers grouped for the locale.

The failures are real: messages to the `@simulator.invalid` addresses go through the drain
(`outbox.drain_lane`), the development backend raises what a real server's refusal raises,
and the retry policy writes the rows.
"""
from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone, translation

from notifications import audit_text
from notifications.audit_text import AuditText
from notifications.channels.email.backends.development import OUTAGE, PERMANENT_FAILURE, TEMPORARY_FAILURE, TIMEOUT
from notifications.channels.email.backends.errors import classify_delivery_error
from notifications.exceptions import InvalidTransition
from notifications.models import DeliveryAttempt, EmailAttachment, Message, Reason, Scope, Status
from notifications.models.messages import size_text
from notifications.core.outbox import lifecycle
from notifications.core.outbox import message_actions
from notifications.core.outbox import drain
from notifications.policies import suppression
from notifications.channels.email.simple import send_simple_mail
from notifications.tests.support.api import ApiClient, create_key, make_user

DEVELOPMENT_BACKEND = "notifications.backends.DevelopmentBackend"
BOUNCE = "bounce@simulator.invalid"
RMA_VARS = {"rma_number": "RMA-1", "serial_number": "SN-1", "status": "ouvert", "link_tracking": "https://rgz.bj/rma/1"}
#: Status codes that must never stand inside a French sentence (as `au statut cancelled`); in
#: English a label and its code are the same word.
RAW_IN_SENTENCE = re.compile(r"(statut|est|messages) «? ?(scheduled|queued|sending|sent|failed|cancelled|expired|bounced)\b")

ENGLISH = {
    "permanent": "permanent: the SMTP server refused the recipients: permanent-failure@simulator.invalid (550 ",
    "transient": "transient: the SMTP server refused the recipients: temporary-failure@simulator.invalid (451 ",
    "spent": "(after 1 of 1 attempts)",
    "unknown": "permanent: the outcome is unknown: ",
    "cancelled": "Cancelled before it was sent.",
    "accepted": "Test key: accepted by the simulator, not delivered.",
    "bounced": "Test key: simulated bounced.",
}
FRENCH = {
    "permanent": "échec définitif : le serveur SMTP a refusé les destinataires : "
                 "permanent-failure@simulator.invalid (550 ",
    "transient": "échec temporaire : le serveur SMTP a refusé les destinataires : "
                 "temporary-failure@simulator.invalid (451 ",
    "spent": "(tentatives épuisées : 1 sur 1)",
    "unknown": "échec définitif : l’issue est inconnue : ",
    "cancelled": "Annulé avant son envoi.",
    "accepted": "Clé de test : accepté par le simulateur, non remis.",
    "bounced": "Clé de test : « rejeté » simulé.",
}
#: What the other language's page must not show (English sentences in a French page and back).
FOREIGN = {"fr": ["the SMTP server", "Cancelled before", "Test key:", "permanent:", "transient:"],
           "en": ["le serveur SMTP", "Annulé avant", "Clé de test", "échec définitif"]}


@pytest.fixture
def story(db, default_templates, settings):
    """A failed (permanent), a failed (transient, attempts spent), an unknown outcome, a
    cancelled message, a test key's simulated bounce, and a row written before codes existed."""
    settings.EMAIL_BACKEND = DEVELOPMENT_BACKEND
    settings.OUTBOX_RETRY_MAX_ATTEMPTS = 1
    messages = {name: send_simple_mail(address, "Votre RMA", "Texte.")[0] for name, address in (
        ("permanent", PERMANENT_FAILURE), ("transient", TEMPORARY_FAILURE), ("unknown", TIMEOUT))}
    [later] = send_simple_mail("client@rgz.bj", "Plus tard", "Texte.", send_at=timezone.now() + timedelta(hours=1))
    messages["cancelled"] = message_actions.cancel_message(message=later)
    key = create_key(make_user("ci-bot", "Senders"), test=True)
    response = ApiClient(key).post("/api/v1/email/send", {
        "template_key": "rma_confirmation", "variables": RMA_VARS, "to": [BOUNCE]})
    assert response.status_code == 201, response.json()
    for lane in {message.lane for message in Message.objects.all()}:
        drain.drain_lane(lane=lane)
    messages["bounced"] = Message.objects.get(address=BOUNCE)
    [old] = send_simple_mail("ancien@rgz.bj", "Ancien", "Texte.", send_at=timezone.now() + timedelta(hours=1))
    # A row as written before the codes: its English sentence and no code.
    Message.objects.filter(pk=old.pk).update(status=Status.FAILED, error_message="Legacy text, kept as stored.",
                                                   error_code="", error_params=None)
    messages["old"] = old
    found = {name: Message.objects.get(pk=message.pk) for name, message in messages.items()}
    assert {name: message.status for name, message in found.items()} == {
        "permanent": Status.FAILED, "transient": Status.FAILED, "unknown": Status.FAILED,
        "cancelled": Status.CANCELLED, "bounced": Status.BOUNCED, "old": Status.FAILED}
    return found


def auditor(client):
    user = make_user("auditrice", "Auditors")
    user.is_staff = True
    user.save()
    assert Group.objects.filter(name="Auditors").exists()
    client.force_login(user)
    return client


def page(client, url: str, language: str) -> str:
    response = client.get(url, headers={"Accept-Language": language})
    assert response.status_code == 200, url
    return response.content.decode()


def assert_in_language(text: str, language: str) -> None:
    for foreign in FOREIGN[language]:
        assert foreign not in text, (language, foreign)
    if language == "fr":
        assert not RAW_IN_SENTENCE.search(text), RAW_IN_SENTENCE.search(text).group(0)


def test_what_the_rows_store_is_a_code_its_parameters_and_the_english_sentence(story):
    permanent, transient, unknown = story["permanent"], story["transient"], story["unknown"]
    assert permanent.error_code == "smtp_recipients_refused"
    assert permanent.error_params["kind"] == "permanent"
    # The server's own reply is a parameter, as it came: never translated.
    assert "550" in permanent.error_params["refused"] and "simulator" in permanent.error_params["refused"]
    assert permanent.error_message.startswith(ENGLISH["permanent"])
    assert transient.error_code == "attempts_spent"
    assert transient.error_params["error"]["code"] == "smtp_recipients_refused"
    assert transient.error_params["attempts"] == 1
    assert transient.error_message.endswith(ENGLISH["spent"])
    assert unknown.error_code == "outcome_unknown"
    [attempt] = unknown.delivery_attempts.all()
    assert (attempt.outcome, attempt.error_code) == (DeliveryAttempt.Outcome.UNKNOWN, "outcome_unknown")
    assert story["cancelled"].error_code == "cancelled"
    assert story["cancelled"].error_message == ENGLISH["cancelled"]
    events = list(story["bounced"].events.order_by("event_type"))
    assert [(event.event_type, event.detail_code) for event in events] == [
        ("bounced", "simulator_outcome"), ("sent", "simulator_accepted")]
    assert events[0].detail == ENGLISH["bounced"]


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_api_message_detail_shows_the_code_and_the_sentence_in_the_request_language(story, language):
    said = FRENCH if language == "fr" else ENGLISH
    api = ApiClient(create_key(make_user("lecteur", "Auditors")), language=language)
    answers = {name: api.get(f"/api/v1/email/messages/{message.pk}").json() for name, message in story.items()}
    permanent = answers["permanent"]
    assert permanent["error_code"] == "smtp_recipients_refused"
    assert permanent["error_params"]["kind"] == "permanent"
    assert permanent["error_text"].startswith(said["permanent"])
    assert permanent["error_message"].startswith(ENGLISH["permanent"])  # the stored English, as before
    assert permanent["delivery_attempts"][0]["error_text"].startswith(said["permanent"])
    assert permanent["delivery_attempts"][0]["error_code"] == "smtp_recipients_refused"
    assert answers["transient"]["error_text"].startswith(said["transient"])
    assert answers["transient"]["error_text"].endswith(said["spent"])
    assert answers["unknown"]["error_text"].startswith(said["unknown"])
    assert answers["cancelled"]["error_text"] == said["cancelled"]
    details = {event["detail_code"]: event["detail_text"] for event in answers["bounced"]["events"]}
    assert details == {"simulator_accepted": said["accepted"], "simulator_outcome": said["bounced"]}
    assert answers["old"]["error_code"] == "" and answers["old"]["error_text"] == "Legacy text, kept as stored."
    for answer in answers.values():
        assert_in_language(answer["error_text"], language)
        for item in answer["delivery_attempts"]:
            assert_in_language(item["error_text"], language)


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_desk_shows_each_message_in_the_page_language(story, client, language):
    said = FRENCH if language == "fr" else ENGLISH
    client = auditor(client)
    url = lambda name: reverse("admin:notifications_message_change", args=[story[name].pk])  # noqa: E731
    failed = page(client, url("permanent"), language)
    assert said["permanent"] in failed
    assert ("Échoué" if language == "fr" else "Failed") in failed
    assert_in_language(failed, language)
    transient = page(client, url("transient"), language)
    assert said["transient"] in transient and said["spent"] in transient
    assert_in_language(transient, language)
    cancelled = page(client, url("cancelled"), language)
    assert said["cancelled"] in cancelled
    assert_in_language(cancelled, language)
    bounced = page(client, url("bounced"), language)
    assert said["accepted"].replace("’", "&#x27;") in bounced.replace("’", "&#x27;")
    assert said["bounced"] in bounced
    assert_in_language(bounced, language)
    # A row written before codes shows what it stored.
    assert "Legacy text, kept as stored." in page(client, url("old"), language)


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_message_list_and_a_recipient_history_speak_the_page_language(story, client, language):
    said = FRENCH if language == "fr" else ENGLISH
    client = auditor(client)
    listing = page(client, reverse("admin:notifications_message_changelist"), language)
    labels = ["Échoué", "Annulé", "Rejeté"] if language == "fr" else ["Failed", "Cancelled", "Bounced"]
    assert all(label in listing for label in labels), labels
    assert_in_language(listing, language)
    history = page(client, reverse("admin:notifications_message_recipient") + f"?email={BOUNCE}", language)
    assert said["bounced"] in history
    assert_in_language(history, language)


@pytest.mark.parametrize("language", ["fr", "en"])
def test_a_refused_action_names_statuses_by_their_labels(story, client, admin_user, language):
    client.force_login(admin_user)
    cancelled = story["cancelled"]
    response = client.post(reverse("admin:notifications_message_cancel", args=[cancelled.pk]),
                           headers={"Accept-Language": language}, follow=True)
    text = " ".join(str(message) for message in response.context["messages"])
    if language == "fr":
        assert "Ce message est au statut « annulé » : seuls les messages au statut « programmé » ou « en file »" \
            in text
    else:
        assert "This message is cancelled: only scheduled or queued messages can be cancelled." in text
    assert_in_language(text, language)
    with translation.override("fr"), pytest.raises(InvalidTransition) as refused:
        message_actions.cancel_message(message=cancelled)
    assert "cancelled" not in refused.value.message and "« annulé »" in refused.value.message
    with translation.override("fr"):
        assert message_actions.retry_refusal(cancelled).startswith("Ce message est au statut « annulé »")


def test_a_stored_text_is_rendered_in_the_language_active_when_it_is_read(settings):
    settings.OUTBOX_MAX_QUEUE_SECONDS = 86400
    text = AuditText("expired_after_error", {
        "reason": lifecycle.expiry_reason(),
        "error": classify_delivery_error(TimeoutError("timed out")).text,
    })
    data = text.as_data()  # what the row keeps: JSON, no sentence
    with translation.override("en"):
        english = audit_text.render(data["code"], data["params"])
    with translation.override("fr"):
        french = audit_text.render(data["code"], data["params"])
    assert english.startswith("Expired: not delivered within OUTBOX_MAX_QUEUE_SECONDS (86,400 s)")
    assert english.endswith("Last error: transient: the server did not answer in time (TimeoutError: timed out)")
    assert french.startswith("Expiré : non remis dans les OUTBOX_MAX_QUEUE_SECONDS (86\xa0400 s)")
    assert french.endswith("Dernière erreur : échec temporaire : le serveur n’a pas répondu à temps "
                           "(TimeoutError: timed out)")
    assert text.english == english


def test_an_unknown_code_or_a_row_without_one_shows_its_stored_text():
    assert audit_text.render("", None, fallback="as stored") == "as stored"
    assert audit_text.render("a_code_from_the_future", {"x": 1}, fallback="as stored") == "as stored"
    assert audit_text.render("cancelled", None) == "Cancelled before it was sent."


def test_sizes_and_titles_follow_the_language_and_its_digit_grouping(settings):
    attachment = EmailAttachment(filename="invoice.pdf", size_bytes=15)
    big = EmailAttachment(filename="archive.zip", size_bytes=1_000_000)
    message = Message(template_key="", address="a@rgz.bj", status=Status.SENT)
    with translation.override("en"):
        assert (str(attachment), str(big)) == ("invoice.pdf (15 bytes)", "archive.zip (1,000,000 bytes)")
        assert str(message) == "simple → a@rgz.bj (Sent)"
        assert size_text(1) == "1 byte"
    with translation.override("fr"):
        assert (str(attachment), str(big)) == ("invoice.pdf (15 octets)", "archive.zip (1\xa0000\xa0000 octets)")
        assert str(message) == "simple → a@rgz.bj (Envoyé)"


def test_every_stored_code_is_documented():
    documented = (Path(settings.BASE_DIR) / "docs" / "ERROR_CODES.md").read_text()
    section = documented[documented.index("## Stored audit text codes"):]
    assert [code for code in audit_text.TEXTS if f"| `{code}` |" not in section] == []


@pytest.mark.django_db
def test_a_suppressed_and_a_released_message_read_in_the_reader_language(settings):
    """The suppression's scope and reason are shown by their labels and its date in the
    reader's format; an outage's release names the server's failure in the reader's language."""
    settings.EMAIL_BACKEND = DEVELOPMENT_BACKEND
    suppression.suppress(address="parti@rgz.bj", scope=Scope.ALL, reason=Reason.MANUAL)
    [suppressed] = send_simple_mail("parti@rgz.bj", "Sujet", "Texte.")
    [released] = send_simple_mail(OUTAGE, "Sujet", "Texte.")
    drain.drain_lane(lane=released.lane)
    suppressed, released = (Message.objects.get(pk=m.pk) for m in (suppressed, released))
    assert (suppressed.status, suppressed.error_code) == (Status.SUPPRESSED, "suppressed")
    assert (released.status, released.attempts, released.error_code) == (Status.QUEUED, 0, "not_attempted")
    with translation.override("fr"):
        assert suppressed.error_text.startswith(
            "Supprimé : parti@rgz.bj est sur la liste de suppression pour tout le courrier (ajoutée par l’équipe, depuis le ")
        assert released.error_text.startswith("Non tenté : le serveur a refusé la connexion")
    with translation.override("en"):
        assert suppressed.error_text.startswith(
            "Suppressed: parti@rgz.bj is on the suppression list for all mail (added by staff, since ")
        assert released.error_text.startswith("Not attempted: the server refused the connection")
    assert released.error_message == released.error_text  # the English sentence, stored
