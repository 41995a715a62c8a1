"""Bad input in the admin's template form: a form error naming the field, never a 500, nothing saved."""
from __future__ import annotations

import json

import pytest
from django.urls import reverse

from notifications.models import EmailTemplate

pytestmark = pytest.mark.django_db


def template_form(template: EmailTemplate, **changes) -> dict:
    """The change form's fields as the admin posts them, with `changes` applied."""
    data = {
        "key": template.key, "name": template.name, "description": template.description,
        "category": template.category, "kind": template.kind, "lane": template.lane,
        "required_variables": json.dumps(template.required_variables),
        "optional_variables": json.dumps(template.optional_variables),
        "sensitive_variables": json.dumps(template.sensitive_variables),
        "max_attempts": template.max_attempts, "default_language": template.default_language,
        "extra_recipients": json.dumps(template.extra_recipients),
        "sample_variables": json.dumps(template.sample_variables), "layout": template.layout,
        "is_active": "on" if template.is_active else "",
        "versions-TOTAL_FORMS": "0", "versions-INITIAL_FORMS": "0",
        "versions-MIN_NUM_FORMS": "0", "versions-MAX_NUM_FORMS": "1000",
    }
    if template.attachments_allowed:
        data["attachments_allowed"] = "on"
    data.update(changes)
    return data


def test_the_unchanged_form_saves(admin_client, default_templates):
    template = EmailTemplate.objects.get(key="billing_invoice_monthly")
    url = reverse("admin:notifications_emailtemplate_change", args=[template.pk])
    response = admin_client.post(url, template_form(template, name="Facture mensuelle"))
    assert response.status_code == 302, response.content.decode()[:3000]
    assert EmailTemplate.objects.get(pk=template.pk).name == "Facture mensuelle"


@pytest.mark.parametrize("field, value, says", [
    ("required_variables", "5", "list of variable names"),
    ("required_variables", '["month", "not a name"]', "list of variable names"),
    ("optional_variables", '["year"]', "object of variable name"),
    ("sensitive_variables", "5", "list of variable names"),
    ("sensitive_variables", '["nope"]', "Not declared"),
    ("extra_recipients", "5", "list of email addresses"),
    ("extra_recipients", '"noc@rgz.bj"', "list of email addresses"),
    ("extra_recipients", '["not-an-address"]', "Invalid email address"),
    ("sample_variables", "[1, 2]", "object of variable name"),
    ("layout", "no_such_layout", "does not exist"),
    ("max_attempts", "0", "at least 1"),
    ("default_language", "xx", "xx"),
])
def test_bad_values_are_form_errors_naming_the_field_and_nothing_is_saved(
    admin_client, default_templates, field, value, says
):
    template = EmailTemplate.objects.get(key="billing_invoice_monthly")
    before = EmailTemplate.objects.filter(pk=template.pk).values().get()
    url = reverse("admin:notifications_emailtemplate_change", args=[template.pk])

    response = admin_client.post(url, template_form(template, **{field: value}))

    assert response.status_code == 200, response.content.decode()[:3000]
    errors = response.context["adminform"].form.errors
    assert field in errors, errors
    assert says in " ".join(errors[field]), errors
    assert EmailTemplate.objects.filter(pk=template.pk).values().get() == before
