"""The admin: every model's pages work, and saving a version goes through the service."""
from __future__ import annotations

import pytest
from django.urls import reverse

from notifications.models import EmailMessage, EmailTemplate, EmailTemplateVersion
from notifications.services.sending import send_mail_template
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
        ("admin:notifications_emailmessage_changelist", ()),
        ("admin:notifications_emailmessage_change", (message.pk,)),
    ]:
        response = staff.get(reverse(name, args=args))
        assert response.status_code == 200, name
    changelist = staff.get(reverse("admin:notifications_emailmessage_changelist") + "?q=a@b.test")
    assert b"Facture RGZ" in changelist.content


def test_adding_a_version_in_the_admin_creates_the_next_version(staff, admin_user):
    template = EmailTemplate.objects.get(key="rma_confirmation")
    response = staff.post(reverse("admin:notifications_emailtemplateversion_add"), {
        "template": template.pk, "language": "fr",
        "subject": "RMA {{ rma_number }} — {{ serial_number }}",
        "preheader": "",
        "html_content": "<p>{{ rma_number }} {{ serial_number }} {{ status }} {{ link_tracking }}</p>",
        "text_content": "",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    versions = list(template.versions.order_by("version"))
    assert [(v.version, v.is_active) for v in versions] == [(1, False), (2, True)]
    assert versions[1].created_by == admin_user


def test_an_invalid_version_is_a_form_error_not_a_500(staff):
    template = EmailTemplate.objects.get(key="rma_confirmation")
    response = staff.post(reverse("admin:notifications_emailtemplateversion_add"), {
        "template": template.pk, "language": "fr", "subject": "RMA {{ rma_numbr }}",
        "html_content": "<p>{{ rma_number }}</p>", "text_content": "", "preheader": "",
    })
    assert response.status_code == 200
    assert "undeclared variables: rma_numbr" in response.content.decode()
    assert template.versions.count() == 1


def test_versions_and_messages_cannot_be_changed_in_the_admin(staff):
    version = EmailTemplateVersion.objects.first()
    response = staff.post(reverse("admin:notifications_emailtemplateversion_change", args=[version.pk]), {
        "template": version.template_id, "language": "fr", "subject": "changed", "html_content": "x",
    })
    assert response.status_code == 403
    version.refresh_from_db()
    assert version.subject != "changed"
    assert not EmailMessage.objects.exists()
