"""The admin: every model's pages work, and saving a version goes through the service."""
from __future__ import annotations

import pytest
from django.urls import reverse

from notifications.models import Message, EmailTemplate, EmailTemplateVersion
from notifications.channels.email.sending import send_mail_template
from notifications.tests.support.payloads import INVOICE_VARS
from notifications.tests.support.files import make_pdf

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(admin_client, default_templates):
    return admin_client


def test_every_admin_page_answers(staff):
    [message] = send_mail_template(
        "billing_invoice_monthly", "a@b.test", INVOICE_VARS, attachments=[("i.pdf", make_pdf(), "application/pdf")]
    )
    template = EmailTemplate.objects.get(key="billing_invoice_monthly")
    version = template.versions.get()
    for name, args in [
        ("admin:notifications_emailtemplate_changelist", ()),
        ("admin:notifications_emailtemplate_change", (template.pk,)),
        ("admin:notifications_emailtemplate_add", ()),
        ("admin:notifications_emailtemplateversion_changelist", ()),
        ("admin:notifications_emailtemplateversion_change", (version.pk,)),
        ("admin:notifications_emailtemplateversion_add", ()),
        ("admin:notifications_message_changelist", ()),
        ("admin:notifications_message_change", (message.pk,)),
        ("admin:notifications_emailattachment_changelist", ()),
        ("admin:notifications_emailattachment_change", (message.attachments.get().pk,)),
        ("admin:notifications_deliveryevent_changelist", ()),
        ("admin:notifications_idempotencyrecord_changelist", ()),
        ("admin:notifications_apikey_changelist", ()),
        ("admin:notifications_apikey_add", ()),
    ]:
        response = staff.get(reverse(name, args=args))
        assert response.status_code == 200, name
    changelist = staff.get(reverse("admin:notifications_message_changelist") + "?q=a@b.test")
    assert b"Facture RGZ" in changelist.content


def test_adding_a_version_in_the_admin_creates_the_next_version(staff, admin_user):
    template = EmailTemplate.objects.get(key="rma_confirmation")
    response = staff.post(reverse("admin:notifications_emailtemplateversion_add"), {
        "template": template.pk, "language": "fr",
        "subject": "RMA {{ rma_number }} — {{ serial_number }}",
        "preheader": "",
        # as a browser sends a textarea: CRLF line endings
        "html_content": "<p>{{ rma_number }} {{ serial_number }}</p>\r\n<p>{{ status }} {{ link_tracking }}</p>",
        "text_content": "",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    versions = list(template.versions.order_by("version"))
    assert [(v.version, v.is_active) for v in versions] == [(1, False), (2, True)]
    assert versions[1].created_by == admin_user
    assert versions[1].html_content == "<p>{{ rma_number }} {{ serial_number }}</p>\n<p>{{ status }} {{ link_tracking }}</p>"


def test_a_new_version_starts_from_an_existing_one_instead_of_a_blank_form(staff):
    template = EmailTemplate.objects.get(key="billing_invoice_monthly")
    current = template.versions.get(is_active=True)
    page = staff.get(reverse("admin:notifications_emailtemplate_change", args=[template.pk])).content.decode()
    link = f'{reverse("admin:notifications_emailtemplateversion_add")}?from_version={current.pk}'
    assert f'href="{link}"' in page

    form = staff.get(link).context["adminform"].form
    assert form.initial["template"] == template.pk and form.initial["language"] == current.language
    assert (form.initial["subject"], form.initial["html_content"], form.initial["text_content"]) == (
        current.subject, current.html_content, current.text_content)

    edited = dict(form.initial, subject=current.subject.replace("Facture", "Votre facture"))
    response = staff.post(reverse("admin:notifications_emailtemplateversion_add"), edited)
    assert response.status_code == 302, response.content.decode()[:2000]
    new = template.versions.get(is_active=True)
    assert new.version == current.version + 1 and new.subject.startswith("Votre facture")
    assert new.html_content == current.html_content

    missing = staff.get(reverse("admin:notifications_emailtemplateversion_add") + "?from_version=nope", follow=True)
    assert missing.status_code == 200 and "does not exist" in missing.content.decode()


def test_an_invalid_version_is_a_form_error_not_a_500(staff):
    template = EmailTemplate.objects.get(key="rma_confirmation")
    response = staff.post(reverse("admin:notifications_emailtemplateversion_add"), {
        "template": template.pk, "language": "fr", "subject": "RMA {{ rma_numbr }}",
        "html_content": "<p>{{ rma_number }}</p>", "text_content": "", "preheader": "",
    })
    assert response.status_code == 200
    assert "undeclared variables: rma_numbr" in response.content.decode()
    assert template.versions.count() == 1


def test_an_unknown_language_is_a_form_error_not_a_500(staff):
    template = EmailTemplate.objects.get(key="rma_confirmation")
    response = staff.post(reverse("admin:notifications_emailtemplateversion_add"), {
        "template": template.pk, "language": "de", "subject": "RMA {{ rma_number }}",
        "html_content": "<p>{{ rma_number }} {{ serial_number }} {{ status }} {{ link_tracking }}</p>",
        "text_content": "", "preheader": "",
    })
    assert response.status_code == 200
    assert list(response.context["adminform"].form.errors) == ["language"]
    assert template.versions.count() == 1


def test_versions_and_messages_cannot_be_changed_in_the_admin(staff):
    version = EmailTemplateVersion.objects.first()
    response = staff.post(reverse("admin:notifications_emailtemplateversion_change", args=[version.pk]), {
        "template": version.template_id, "language": "fr", "subject": "changed", "html_content": "x",
    })
    assert response.status_code == 403
    version.refresh_from_db()
    assert version.subject != "changed"
    assert not Message.objects.exists()


def test_an_api_key_made_in_the_admin_is_shown_once_and_can_be_revoked(staff, admin_user):
    from notifications.models import APIKey
    from notifications.tests.support.api import ApiClient

    response = staff.post(reverse("admin:notifications_apikey_add"), {"user": admin_user.pk, "name": "ops"}, follow=True)
    assert response.status_code == 200
    page = response.content.decode()
    raw = page.split("store it): ")[1].split("<")[0].strip()
    key = APIKey.objects.get(name="ops")
    assert raw.startswith("ntf_live_") and key.key_hash != raw and raw not in staff.get(
        reverse("admin:notifications_apikey_change", args=[key.pk])).content.decode()
    assert ApiClient(raw).get("/api/v1/email/templates").status_code == 200

    listing = staff.get(reverse("admin:notifications_apikey_changelist"))
    assert key.prefix in listing.content.decode()
    staff.post(reverse("admin:notifications_apikey_changelist"), {"action": "revoke", "_selected_action": [key.pk]})
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert ApiClient(raw).get("/api/v1/email/templates").status_code == 401


def test_an_auditor_can_read_the_audit_but_change_nothing(client, default_templates):
    from notifications.access.groups import AUDITORS
    from notifications.tests.support.api import make_user

    [message] = send_mail_template("billing_invoice_monthly", "a@b.test", INVOICE_VARS)
    auditor = make_user("auditor", AUDITORS)
    auditor.is_staff = True
    auditor.save()
    client.force_login(auditor)
    assert client.get(reverse("admin:notifications_message_change", args=[message.pk])).status_code == 200
    assert client.get(reverse("admin:notifications_emailtemplateversion_add")).status_code == 403
    assert client.get(reverse("admin:notifications_smtpserverconfig_add")).status_code == 403
