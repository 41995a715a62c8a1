"""The admin as the audit desk (issue 12, parts 4 and 6): the message list, a message's page,
resend / retry / cancel, attachment downloads and a recipient's history, for each group.

Real requests through Django's test client as each group's staff member; what an action
did is read back from the database (and, for one resend, from a real SMTP server).
"""
from __future__ import annotations

import hashlib
import os
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from notifications.access.groups import ADMINISTRATORS, AUDITORS, SENDERS, TEMPLATE_EDITORS
from notifications.models import DeliveryEvent, EmailAttachment, Message, Reason, Scope, Status, Suppression
from notifications.core.outbox import lifecycle
from notifications.channels.email.sending import send_mail_template
from notifications.tests.support.files import make_pdf
from notifications.tests.support.payloads import INVOICE_VARS

pytestmark = pytest.mark.django_db

GROUPS = (ADMINISTRATORS, AUDITORS, TEMPLATE_EDITORS, SENDERS)
PDF = make_pdf("Facture INV-2026-0042")
REFUSED = (AUDITORS, TEMPLATE_EDITORS, SENDERS)


def url(name: str, *args) -> str:
    return reverse(f"admin:notifications_message_{name}", args=args)


@pytest.fixture
def as_group(client, django_user_model):
    """Log the test client in as a staff member of one group (staff, so the group alone decides)."""
    def login(group: str):
        user = django_user_model.objects.create_user(username=group.replace(" ", "_").lower(), password="x" * 12,
                                                     is_staff=True)
        user.groups.add(Group.objects.get(name=group))
        client.force_login(user)
        return client
    return login


def invoice(to: str = "Reseller@TechConnect.bj", *, sent: bool = False, capture=None) -> Message:
    """An invoice with a PDF; `sent`: delivered at once (eager drain, locmem backend)."""
    def send():
        return send_mail_template("billing_invoice_monthly", to, INVOICE_VARS,
                                  attachments=[("facture-été.pdf", PDF, "application/pdf")], source_endpoint="billing")
    if sent:
        with capture(execute=True):
            [message] = send()
    else:
        [message] = send()
    message.refresh_from_db()
    return message


def finish_badly(message: Message, *, status: str = Status.FAILED) -> Message:
    """Claim `message` (the only due one of its lane) and fail or expire it, as a worker would."""
    [claimed] = lifecycle.claim_due(lane=message.lane, limit=1)
    assert claimed.pk == message.pk
    failure = lifecycle.Failure(message_id=message.pk, attempt=claimed.attempts, started_at=timezone.now(),
                                error="permanent: 550 5.1.1 no such user", outcome="permanent")
    if status == Status.FAILED:
        assert lifecycle.fail(failure)
    else:
        assert lifecycle.expire_claimed(failure, reason=lifecycle.expiry_reason())
    message.refresh_from_db()
    return message


def texts(response) -> str:
    return " ".join(str(m) for m in response.context["messages"]) if response.context else ""


# --- who may see what -------------------------------------------------------------------------

@pytest.mark.parametrize("group", GROUPS)
def test_each_group_reads_the_desk_as_the_contract_says(group, as_group, default_templates):
    message = invoice()
    attachment = message.attachments.get()
    client = as_group(group)
    pages = [url("changelist"), url("change", message.pk), url("recipient") + "?email=reseller@techconnect.bj",
             url("attachment_download", message.pk, attachment.pk)]
    expected = 200 if group in (ADMINISTRATORS, AUDITORS) else 403
    assert [client.get(page).status_code for page in pages] == [expected] * 4
    # Only Administrators see SMTP servers, API keys and idempotency records.
    secrets = ["admin:notifications_smtpserverconfig_changelist", "admin:notifications_apikey_changelist",
               "admin:notifications_idempotencyrecord_changelist"]
    assert [client.get(reverse(name)).status_code for name in secrets] == [
        200 if group == ADMINISTRATORS else 403] * 3
    # Auditors read events, attachments and suppressions, and change nothing.
    readable = ["admin:notifications_deliveryevent_changelist", "admin:notifications_emailattachment_changelist",
                "admin:notifications_suppression_changelist"]
    assert [client.get(reverse(name)).status_code for name in readable] == [expected] * 3
    if group == AUDITORS:
        added = client.post(reverse("admin:notifications_suppression_add"),
                            {"address": "x@rgz.bj", "scope": "all", "detail": ""})
        assert added.status_code == 403 and not Suppression.objects.exists()


def test_the_buttons_shown_are_those_the_user_may_use_and_the_status_allows(as_group, default_templates,
                                                                            django_capture_on_commit_callbacks):
    sent = invoice("sent@rgz.bj", sent=True, capture=django_capture_on_commit_callbacks)
    queued = invoice("queued@rgz.bj")
    assert sent.status == Status.SENT
    client = as_group(ADMINISTRATORS)

    def buttons(message) -> set[str]:
        page = client.get(url("change", message.pk)).content.decode()
        return {name for name in ("resend", "retry", "cancel") if url(name, message.pk) in page}

    assert buttons(queued) == {"cancel"}
    assert buttons(sent) == {"resend"}
    client.logout()
    client = as_group(AUDITORS)
    assert buttons(queued) == buttons(sent) == set()


# --- a message's page ---------------------------------------------------------------------------

def test_a_messages_page_shows_its_html_sandboxed_its_text_attachments_attempts_and_version(
    as_group, default_templates, django_capture_on_commit_callbacks
):
    message = invoice(sent=True, capture=django_capture_on_commit_callbacks)
    DeliveryEvent.objects.create(message=message, event_type="delivered", provider="sendgrid",
                                 recipient=message.address, occurred_at=timezone.now(), detail="250 OK")
    page = as_group(AUDITORS).get(url("change", message.pk)).content.decode()
    # The HTML is inside a sandboxed frame (escaped into srcdoc), never printed as source text.
    frame = re.search(r'<iframe sandbox="" [^>]*srcdoc="([^"]*)"', page)
    assert frame and "&lt;p" in frame.group(1) and "Tech Connect SA" in frame.group(1)
    assert "&lt;p" not in page.replace(frame.group(1), "")
    assert "<pre" in page and "Tech Connect SA" in page.split("<pre", 1)[1]
    attachment = message.attachments.get()
    assert url("attachment_download", message.pk, attachment.pk) in page and "facture-été.pdf" in page
    version = message.template_version
    assert reverse("admin:notifications_emailtemplateversion_change", args=[version.pk]) in page
    assert "250 OK" in page  # the event inline
    assert ">1<" in page and "locmem" in page  # the attempt inline: number and server


def test_an_attachment_downloads_with_its_bytes_a_safe_name_and_no_sniffing(as_group, default_templates):
    message = invoice()
    other = invoice("other@rgz.bj")
    attachment = message.attachments.get()
    client = as_group(AUDITORS)
    response = client.get(url("attachment_download", message.pk, attachment.pk))
    assert response.status_code == 200
    assert response.content == PDF and hashlib.sha256(response.content).hexdigest() == attachment.sha256
    assert response["Content-Disposition"] == "attachment; filename*=utf-8''facture-%C3%A9t%C3%A9.pdf"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Type"] == "application/octet-stream"
    # Another message's attachment through this message's URL: 404.
    assert client.get(url("attachment_download", other.pk, attachment.pk)).status_code == 404


# --- resend --------------------------------------------------------------------------------------

def test_resend_asks_first_then_queues_a_copy_that_points_at_the_original(
    as_group, default_templates, django_capture_on_commit_callbacks
):
    original = invoice(sent=True, capture=django_capture_on_commit_callbacks)
    client = as_group(ADMINISTRATORS)
    confirm = client.get(url("resend", original.pk))
    assert confirm.status_code == 200 and "Yes, resend" in confirm.content.decode()
    assert Message.objects.count() == 1  # a GET changes nothing

    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(url("resend", original.pk))
    copy = Message.objects.get(resent_from=original)
    assert response.status_code == 302 and response["Location"] == url("change", copy.pk)
    assert callbacks, "the lane is woken once the copy is committed"
    assert copy.status == Status.QUEUED and copy.attempts == 0 and copy.pk != original.pk
    assert copy.source_endpoint == "admin-resend" and copy.sent_by.username == "administrators"
    assert (copy.subject, copy.html_content, copy.text_content, copy.address, copy.template_version_id) == (
        original.subject, original.html_content, original.text_content, original.address,
        original.template_version_id)
    [attachment] = copy.attachments.all()
    assert attachment.blob_id == original.attachments.get().blob_id  # the bytes stored once
    page = client.get(url("change", original.pk)).content.decode()
    assert url("change", copy.pk) in page  # "resent as"
    assert url("change", original.pk) in client.get(url("change", copy.pk)).content.decode()


def test_a_resent_message_reaches_the_smtp_server_with_a_message_id_of_its_own(
    as_group, default_templates, smtp_backend, django_capture_on_commit_callbacks
):
    original = invoice(sent=True, capture=django_capture_on_commit_callbacks)
    client = as_group(ADMINISTRATORS)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url("resend", original.pk))
    first, again = smtp_backend.wait_for(2)
    copy = Message.objects.get(resent_from=original)
    copy.refresh_from_db()
    assert copy.status == Status.SENT
    assert first.message["Subject"] == again.message["Subject"]
    assert first.message["Message-ID"] == original.provider_message_id
    assert again.message["Message-ID"] == copy.provider_message_id != original.provider_message_id
    assert copy.pk.hex in again.message["Message-ID"]
    [pdf] = list(again.message.iter_attachments())
    assert pdf.get_content() == PDF


def test_resending_to_a_suppressed_address_ends_suppressed_like_any_send(as_group, default_templates,
                                                                         django_capture_on_commit_callbacks):
    original = invoice(sent=True, capture=django_capture_on_commit_callbacks)
    Suppression.objects.create(address="reseller@techconnect.bj", scope=Scope.ALL, reason=Reason.MANUAL)
    response = as_group(ADMINISTRATORS).post(url("resend", original.pk), follow=True)
    copy = Message.objects.get(resent_from=original)
    assert copy.status == Status.SUPPRESSED and "suppression list" in copy.error_message
    assert "was not sent" in texts(response)


def confirmation_token(page) -> str:
    [token] = re.findall(r'<input type="hidden" name="resend_token" value="([0-9a-f]{32})"', page.content.decode())
    return token


def test_the_same_confirmation_posted_twice_resends_once(as_group, default_templates,
                                                          django_capture_on_commit_callbacks):
    """A double click, or a reload that posts the form again, queues one copy; a new confirmation another."""
    original = invoice(sent=True, capture=django_capture_on_commit_callbacks)
    client = as_group(ADMINISTRATORS)
    token = confirmation_token(client.get(url("resend", original.pk)))
    first = client.post(url("resend", original.pk), {"resend_token": token})
    again = client.post(url("resend", original.pk), {"resend_token": token})
    copy = Message.objects.get(resent_from=original)
    assert first["Location"] == again["Location"] == url("change", copy.pk)
    assert copy.idempotency_key == f"resend:{token}"
    other = confirmation_token(client.get(url("resend", original.pk)))
    assert other != token
    client.post(url("resend", original.pk), {"resend_token": other})
    assert Message.objects.filter(resent_from=original).count() == 2


def test_the_resend_action_confirmed_twice_resends_each_message_once(as_group, default_templates,
                                                                     django_capture_on_commit_callbacks):
    sent = [invoice(f"twice{n}@rgz.bj", sent=True, capture=django_capture_on_commit_callbacks) for n in range(2)]
    client = as_group(ADMINISTRATORS)
    selection = {"action": "resend", "_selected_action": [m.pk for m in sent], "index": 0}
    token = confirmation_token(client.post(url("changelist"), selection))
    for _ in range(2):
        client.post(url("changelist"), {**selection, "confirmed": "yes", "resend_token": token})
    assert sorted(Message.objects.filter(resent_from__isnull=False).values_list("resent_from", flat=True)) == \
        sorted(m.pk for m in sent)


def test_a_message_not_sent_yet_is_not_resent(as_group, default_templates):
    queued = invoice()
    response = as_group(ADMINISTRATORS).post(url("resend", queued.pk), follow=True)
    assert response.status_code == 200 and "has not left yet" in texts(response)
    assert Message.objects.count() == 1


def test_the_resend_action_resends_the_selection_after_a_confirmation(as_group, default_templates,
                                                                      django_capture_on_commit_callbacks):
    sent = [invoice(f"r{n}@rgz.bj", sent=True, capture=django_capture_on_commit_callbacks) for n in range(2)]
    queued = invoice("waiting@rgz.bj")
    client = as_group(ADMINISTRATORS)
    selection = {"action": "resend", "_selected_action": [m.pk for m in [*sent, queued]], "index": 0}
    confirm = client.post(url("changelist"), selection)
    assert confirm.status_code == 200 and "Yes, resend" in confirm.content.decode()
    assert Message.objects.count() == 3
    hidden = dict(re.findall(r'<input type="hidden" name="(action|confirmed)" value="([^"]*)"', confirm.content.decode()))
    assert hidden == {"action": "resend", "confirmed": "yes"}
    response = client.post(url("changelist"), {"action": "resend", "confirmed": "yes",
                                               "_selected_action": [m.pk for m in [*sent, queued]]}, follow=True)
    assert response.status_code == 200
    assert set(Message.objects.filter(resent_from__isnull=False).values_list("resent_from", flat=True)) == {
        m.pk for m in sent}
    assert "2 messages resent" in texts(response) and "has not left yet" in texts(response)


# --- retry and cancel ----------------------------------------------------------------------------

def test_retry_moves_failed_and_expired_messages_back_to_queued_one_or_many(as_group, default_templates):
    failed = finish_badly(invoice("failed@rgz.bj"))
    expired = finish_badly(invoice("expired@rgz.bj"), status=Status.EXPIRED)
    single = finish_badly(invoice("single@rgz.bj"))
    queued = invoice("queued@rgz.bj")
    client = as_group(ADMINISTRATORS)
    response = client.post(url("changelist"), {
        "action": "retry", "index": 0, "_selected_action": [failed.pk, expired.pk, queued.pk]}, follow=True)
    assert "2 messages queued again" in texts(response) and "only failed or expired" in texts(response)
    for message in (failed, expired):
        message.refresh_from_db()
        assert message.status == Status.QUEUED and message.max_attempts == message.attempts + 1 == 2
        assert message.next_attempt_at <= timezone.now()

    response = client.post(url("retry", single.pk), follow=True)
    single.refresh_from_db()
    assert single.status == Status.QUEUED and "1 message queued again" in texts(response)
    assert client.get(url("retry", single.pk)).status_code == 405  # an action is a POST


def test_a_retried_message_is_woken_and_delivered_at_once(as_group, default_templates, settings, start_smtp_server,
                                                          django_capture_on_commit_callbacks):
    refusing = start_smtp_server(rcpt_replies={"failed@rgz.bj": "550 5.1.1 No such user"})
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = refusing.host, refusing.port, False
    failed = invoice("failed@rgz.bj", sent=True, capture=django_capture_on_commit_callbacks)
    assert failed.status == Status.FAILED and "550" in failed.error_message

    accepting = start_smtp_server()  # the mailbox exists now
    settings.EMAIL_PORT = accepting.port
    with django_capture_on_commit_callbacks(execute=True):  # the lane's wake-up runs the (eager) drain
        as_group(ADMINISTRATORS).post(url("retry", failed.pk))
    [received] = accepting.wait_for(1)
    failed.refresh_from_db()
    assert failed.status == Status.SENT and failed.attempts == 2
    assert received.message["Message-ID"] == failed.provider_message_id
    assert [a.outcome for a in failed.delivery_attempts.order_by("number")] == ["permanent", "sent"]


def test_cancel_holds_back_a_queued_message_and_refuses_a_sent_one(as_group, default_templates,
                                                                   django_capture_on_commit_callbacks):
    sent = invoice("sent@rgz.bj", sent=True, capture=django_capture_on_commit_callbacks)
    queued = invoice("queued@rgz.bj")
    client = as_group(ADMINISTRATORS)
    client.post(url("cancel", queued.pk))
    queued.refresh_from_db()
    assert queued.status == Status.CANCELLED
    response = client.post(url("cancel", sent.pk), follow=True)
    sent.refresh_from_db()
    assert sent.status == Status.SENT and "only scheduled or queued messages can be cancelled" in texts(response)
    again = invoice("again@rgz.bj")
    client.post(url("changelist"), {"action": "cancel", "index": 0, "_selected_action": [again.pk]})
    again.refresh_from_db()
    assert again.status == Status.CANCELLED


def test_masked_content_gone_refuses_resend_and_retry_saying_why(as_group, default_templates):
    [message] = send_mail_template("account_creation_invitation", "new.user@rgz.bj",
                                   {"creation_url": "https://rgz.bj/invite?token=s3cr3t"})
    message = finish_badly(message)
    assert message.is_masked and message.sealed_content == ""
    client = as_group(ADMINISTRATORS)
    page = client.get(url("change", message.pk)).content.decode()
    assert url("resend", message.pk) not in page and url("retry", message.pk) not in page
    for response in (client.post(url("resend", message.pk), follow=True),
                     client.post(url("retry", message.pk), follow=True),
                     client.post(url("changelist"), {"action": "retry", "index": 0,
                                                     "_selected_action": [message.pk]}, follow=True)):
        assert response.status_code == 200 and "unmasked content was deleted" in texts(response)
    message.refresh_from_db()
    assert message.status == Status.FAILED and Message.objects.count() == 1


@pytest.mark.parametrize("group", REFUSED)
def test_a_post_to_each_action_without_its_permission_is_refused(group, as_group, default_templates):
    failed = finish_badly(invoice("failed@rgz.bj"))
    queued = invoice("queued@rgz.bj")
    client = as_group(group)
    for action, message in (("resend", failed), ("retry", failed), ("cancel", queued)):
        assert client.post(url(action, message.pk)).status_code == 403, action
        response = client.post(url("changelist"), {"action": action, "index": 0, "confirmed": "yes",
                                                   "_selected_action": [message.pk]})
        # Not offered to them: the list again (no action at all), "no action selected", or no access at all.
        assert response.status_code in (200, 302, 403), action
    failed.refresh_from_db()
    queued.refresh_from_db()
    assert (failed.status, queued.status) == (Status.FAILED, Status.QUEUED)
    assert Message.objects.count() == 2


# --- the list, the search and the history --------------------------------------------------------

def test_the_search_is_exact_and_case_insensitive_on_the_address_and_exact_on_ids(as_group, default_templates):
    message = invoice("Reseller@TechConnect.bj")
    invoice("reseller@techconnect.bj.example")
    client = as_group(AUDITORS)

    def found(term: str) -> list:
        return [m.pk for m in client.get(url("changelist"), {"q": term}).context["cl"].result_list]

    assert found("RESELLER@techconnect.BJ") == [message.pk]
    assert found("reseller@") == []  # no substring scans
    assert found(str(message.pk)) == [message.pk]
    Message.objects.filter(pk=message.pk).update(provider_message_id="<abc.123@mail.rgz.bj>")
    assert found("<abc.123@mail.rgz.bj>") == [message.pk]
    assert found("abc.123@mail.rgz.bj") == [message.pk]  # a bare Message-ID, as a person types it (issue 18)
    assert found(" ABC.123@mail.rgz.bj ") == []  # a Message-ID is exact, case and all
    Message.objects.filter(pk=message.pk).update(provider_message_id="sg-0a1b2c")
    assert found("sg-0a1b2c") == [message.pk]


def test_the_filters_narrow_the_list(as_group, default_templates):
    invoice_message = invoice("a@rgz.bj")
    client = as_group(AUDITORS)

    def listed(**params) -> set:
        return {m.pk for m in client.get(url("changelist"), params).context["cl"].result_list}

    assert listed(status="queued") == {invoice_message.pk}
    assert listed(status="sent") == set()
    assert listed(template="billing_invoice_monthly") == {invoice_message.pk}
    assert listed(template="rma_confirmation") == set()
    assert listed(category="billing") == {invoice_message.pk}
    assert listed(category="incident") == set()
    assert listed(lane=invoice_message.lane) == {invoice_message.pk}
    midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0).isoformat()
    assert listed(created_at__gte=midnight) == {invoice_message.pk}
    assert listed(created_at__lt=midnight) == set()


def test_a_recipients_history_lists_its_messages_events_and_suppression_in_any_case(
    as_group, default_templates, django_capture_on_commit_callbacks
):
    first = invoice("Client@RGZ.bj", sent=True, capture=django_capture_on_commit_callbacks)
    second = invoice("client@rgz.bj")
    other = invoice("someone@rgz.bj")
    DeliveryEvent.objects.create(message=first, event_type="bounced", provider="sendgrid",
                                 recipient="client@rgz.bj", occurred_at=timezone.now(), detail="mailbox full")
    Suppression.objects.create(address="client@rgz.bj", scope=Scope.ALL, reason=Reason.BOUNCE)
    client = as_group(AUDITORS)
    listing = client.get(url("changelist")).content.decode()
    history = url("recipient") + "?email=Client%40RGZ.bj"
    assert history.replace("&", "&amp;") in listing or history in listing
    response = client.get(url("recipient"), {"email": "CLIENT@rgz.BJ"})
    page = response.content.decode()
    assert [m.pk for m in response.context["page"].object_list] == [second.pk, first.pk]
    assert url("change", other.pk) not in page
    assert "mailbox full" in page and "Bounce" in page
    assert client.get(url("recipient")).status_code == 404


def test_a_recipients_history_also_lists_the_events_that_matched_no_message(as_group, default_templates):
    """A bounce the provider reports for an address we never mailed (or mailed elsewhere) is
    part of that address's story: listed, newest first, marked as matching none of ours."""
    mine = invoice("client@rgz.bj")
    now = timezone.now()
    DeliveryEvent.objects.create(message=mine, event_type="delivered", provider="sendgrid",
                                 recipient="client@rgz.bj", occurred_at=now - timedelta(hours=1), detail="ok")
    DeliveryEvent.objects.create(message=None, event_type="bounced", provider="amazon_ses",
                                 recipient="Client@RGZ.bj", occurred_at=now, detail="unknown user")
    DeliveryEvent.objects.create(message=None, event_type="bounced", provider="amazon_ses",
                                 recipient="stranger@rgz.bj", occurred_at=now, detail="not this one")
    response = as_group(AUDITORS).get(url("recipient"), {"email": "client@rgz.bj"})
    assert response.status_code == 200
    assert [event.detail for event in response.context["events"]] == ["unknown user", "ok"]
    page = response.content.decode()
    assert "none of ours (unmatched)" in page and "not this one" not in page


def test_the_list_makes_as_many_queries_with_500_messages_as_with_one(as_group, default_templates):
    one = invoice("first@rgz.bj")
    client = as_group(AUDITORS)
    client.get(url("changelist"))  # the session and the content types, once

    def queries() -> list[str]:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url("changelist"))
        assert response.status_code == 200
        return [query["sql"] for query in captured.captured_queries]

    with_one = queries()
    Message.objects.bulk_create([
        Message(**{field: getattr(one, field) for field in (
            "template_key", "template_version_id", "language", "from_email", "subject", "html_content",
            "text_content", "lane", "status", "next_attempt_at", "max_attempts", "attachments_count")},
            address=f"r{n}@rgz.bj") for n in range(499)
    ])
    with_many = queries()
    assert len(with_many) == len(with_one), "\n".join(with_many)
    page = [sql for sql in with_many if "notifications_message" in sql and "LIMIT" in sql]
    assert page and all('"html_content"' not in sql and '"mime"' not in sql for sql in page)
    # The count is bounded, never a COUNT(*) of the whole table.
    counts = [sql for sql in with_many if "COUNT(" in sql.upper() and "notifications_message" in sql]
    assert counts and all("LIMIT" in sql for sql in counts)


def test_the_list_fits_a_narrow_window(as_group, default_templates):
    invoice()
    response = as_group(AUDITORS).get(url("changelist"))
    headers = re.findall(r'<th scope="col" class="([^"]*)"', response.content.decode())
    assert len(headers) <= 8  # action checkbox and seven columns
    assert list(response.context["cl"].list_display)[-7:] == [
        "created", "recipient", "template_key", "short_subject", "status", "attempts", "sent"]


def test_the_attachment_of_a_message_is_served_only_under_that_message(as_group, default_templates):
    message = invoice()
    client = as_group(ADMINISTRATORS)
    assert client.get(url("attachment_download", message.pk, "0" * 8 + "-0000-0000-0000-" + "0" * 12)).status_code == 404
    assert EmailAttachment.objects.count() == 1


# --- on PostgreSQL, with 100,000 messages: every list query on an index --------------------------

ROWS = 100_000
#: A year of messages, one every five minutes. Most are sent or delivered, one in twenty of each
#: other status; the rare values (`expired`, the `rma_confirmation` template, the urgent lane)
#: only among the oldest rows: the worst case for reading the newest-first index with a filter.
FILL = """
INSERT INTO notifications_message (
    id, template_key, language, address, from_email, reply_to, cc, bcc, subject, html_content,
    text_content, variables, is_masked, sealed_content, mime, attachments_count, status, lane, attempts,
    max_attempts, bounce_type, bounce_subtype, error_message, provider_message_id, sent_via, source_endpoint,
    idempotency_key, is_test, created_at, updated_at)
SELECT gen_random_uuid(),
       CASE WHEN i > 90000 AND i %% 5 = 0 THEN 'rma_confirmation'
            ELSE (ARRAY['billing_invoice_monthly', 'incident_alert_critical', 'onboarding_welcome',
                        'support_ticket_update', 'account_creation_invitation', 'newsletter',
                        'other_notice'])[1 + i %% 7] END,
       'fr', 'user' || (i %% 20000) || '@example.rgz.bj', 'Notifications <noreply@rgz.bj>', '[]', '[]', '[]',
       'Subject ' || i, repeat('<p>x</p>', 150), repeat('x', 600), '{}', false, '', '', 0,
       CASE WHEN i > 95000 AND i %% 10 = 0 THEN 'expired'
            ELSE (ARRAY['failed', 'sent', 'cancelled', 'suppressed', 'bounced', 'queued', 'sent', 'sent', 'sent',
                        'sent', 'delivered', 'delivered', 'delivered', 'delivered', 'delivered', 'delivered',
                        'delivered', 'delivered', 'delivered', 'delivered'])[1 + i %% 20] END,
       CASE WHEN i > 95000 AND i %% 4 = 0 THEN 'urgent' WHEN i %% 4 = 1 THEN 'bulk' ELSE 'default' END,
       1, 3, '', '', '', '<' || i || '@rgz.bj>', 'smtp', 'billing', '', false,
       now() - i * interval '5 minutes', now()
FROM generate_series(1, %s) AS i
"""


def test_on_postgresql_every_filter_and_the_search_read_an_index(as_group, default_templates):
    from notifications.tests.support.services import require

    require(connection.vendor == "postgresql", "query plans are checked on PostgreSQL (set DATABASE_URL)")
    with connection.cursor() as cursor:
        cursor.execute(FILL, [ROWS])
        cursor.execute("ANALYZE notifications_message")
    assert_the_desk_reads_indexes(as_group(AUDITORS))


def assert_the_desk_reads_indexes(client, db=connection) -> None:
    """Every filter, the search and a recipient's history read an index of the FILLed table
    (also checked on a database migrated with 100,000 messages: tests/core/test_message_table_migration.py)."""
    week_ago = (timezone.now() - timezone.timedelta(days=7)).isoformat()
    lists = {
        "no filter": {}, "status failed": {"status": "failed"}, "status delivered": {"status": "delivered"},
        "status queued": {"status": "queued"}, "status expired (rare, old)": {"status": "expired"},
        "template": {"template": "billing_invoice_monthly"}, "template rma (rare, old)": {"template": "rma_confirmation"},
        "category": {"category": "billing"}, "category rma (rare, old)": {"category": "rma"}, "lane urgent (rare, old)": {"lane": "urgent"}, "lane default": {"lane": "default"},
        "date": {"created_at__gte": week_ago}, "search": {"q": "USER42@example.rgz.bj"},
        "search by id": {"q": "<4242@rgz.bj>"}, "search by bare id": {"q": "4242@rgz.bj"}, "page 3": {"p": "3"},
    }
    plans = {}
    for name, params in lists.items():
        with CaptureQueriesContext(db) as captured:
            response = client.get(url("changelist"), params)
        assert response.status_code == 200, name
        assert response.context["cl"].result_list, name
        [page] = [q["sql"] for q in captured.captured_queries
                  if q["sql"].startswith("SELECT") and 'ORDER BY "notifications_message"."created_at" DESC' in q["sql"]]
        plans[name] = explain(page, db)
        counts = [q["sql"] for q in captured.captured_queries if "COUNT(" in q["sql"]]
        if set(params) <= {"p"}:  # unfiltered: the planner's estimate, no count at all
            assert counts == [] and response.context["cl"].result_count >= ROWS * 0.9
        else:
            assert counts and all("LIMIT" in sql for sql in counts), name
            plans[f"{name}, count"] = explain(counts[0], db)
    with CaptureQueriesContext(db) as captured:
        response = client.get(url("recipient"), {"email": "User42@Example.RGZ.bj"})
    assert len(response.context["page"].object_list) == 5
    [history] = [q["sql"] for q in captured.captured_queries if "UPPER(" in q["sql"] and "LIMIT" in q["sql"]
                 and "deliveryevent" not in q["sql"]]
    plans["history"] = explain(history, db)
    if os.environ.get("SHOW_PLANS"):  # to read them: SHOW_PLANS=1 pytest -s -k postgresql
        print("\n\n".join(f"== {n}\n{p}" for n, p in plans.items()))
    for name, plan in plans.items():
        if name.endswith(", count"):
            # Bounded: at most COUNT_BOUND rows read, by an index, or by a scan that stops there.
            assert "Limit" in plan, f"{name}:\n{plan}"
            if "rare" in name or name.startswith(("search", "date", "status expired")):
                assert "Seq Scan on notifications_message" not in plan, f"{name}:\n{plan}"
            continue
        assert "Seq Scan on notifications_message" not in plan, f"{name}:\n{plan}"
        assert "Index" in plan, f"{name}:\n{plan}"
    assert "message_address" in plans["search"] and "message_address" in plans["history"]


def explain(sql: str, db=connection) -> str:
    with db.cursor() as cursor:
        cursor.execute(f"EXPLAIN {'(ANALYZE, BUFFERS) ' if os.environ.get('SHOW_PLANS') else ''}{sql}")
        return "\n".join(row[0] for row in cursor.fetchall())


def test_the_attachments_list_links_each_download_and_reads_no_rendering(as_group, default_templates):
    message = invoice()
    attachment = message.attachments.get()
    client = as_group(AUDITORS)
    with CaptureQueriesContext(connection) as captured:
        page = client.get(reverse("admin:notifications_emailattachment_changelist")).content.decode()
    assert url("attachment_download", message.pk, attachment.pk) in page
    assert not [q["sql"] for q in captured.captured_queries if '"html_content"' in q["sql"]]


def test_a_long_history_is_paged(as_group, default_templates):
    one = invoice("busy@rgz.bj")
    Message.objects.bulk_create([
        Message(address="Busy@RGZ.bj", from_email=one.from_email, subject=f"n°{n}",
                     template_key=one.template_key, status=Status.SENT) for n in range(150)
    ])
    client = as_group(AUDITORS)
    first = client.get(url("recipient"), {"email": "busy@rgz.bj"})
    assert len(first.context["page"].object_list) == 100 and "p=2" in first.content.decode()
    second = client.get(url("recipient"), {"email": "busy@rgz.bj", "p": "2"})
    assert len(second.context["page"].object_list) == 51


@pytest.mark.parametrize("params", [
    {"status": "nope"}, {"template": "nope"}, {"category": "nope"}, {"lane": "nope"},
    {"created_at__gte": "not a date"}, {"q": "x" * 300 + "@rgz.bj"}, {"q": "<"}, {"p": "abc"}, {"p": "999"},
    {"o": "5"}, {"recipient_email__startswith": "a"},
])
def test_bad_list_parameters_are_an_empty_list_or_a_redirect_never_a_500(params, as_group, default_templates):
    invoice()
    response = as_group(AUDITORS).get(url("changelist"), params)
    assert response.status_code in (200, 302), response.status_code


@pytest.mark.parametrize("params", [{"email": "x" * 400}, {"email": "a@b.bj", "p": "abc"}, {"email": "a@b.bj", "p": "-1"}])
def test_bad_history_parameters_never_a_500(params, as_group, default_templates):
    assert as_group(AUDITORS).get(url("recipient"), params).status_code == 200


def test_an_action_posted_without_the_csrf_token_is_refused(admin_user, default_templates):
    from django.test import Client

    queued = invoice()
    browser = Client(enforce_csrf_checks=True, headers={"Accept-Language": "en"})
    browser.force_login(admin_user)
    assert browser.post(url("cancel", queued.pk)).status_code == 403
    page = browser.get(url("change", queued.pk)).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    assert browser.post(url("cancel", queued.pk), {"csrfmiddlewaretoken": token}).status_code == 302
    queued.refresh_from_db()
    assert queued.status == Status.CANCELLED
