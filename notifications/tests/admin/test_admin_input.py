"""Bad input in the admin's template form: a form error naming the field (and the row), never
a 500, nothing saved. Lists are posted one input per row, mappings as name / value rows, as
the editor's widgets send them (admin_editor_forms.py)."""
from __future__ import annotations

import pytest
from django.urls import reverse

from notifications.models import EmailTemplate
from notifications.tests.support.admin_forms import template_form

pytestmark = pytest.mark.django_db

def test_the_unchanged_form_saves(admin_client, default_templates):
    template = EmailTemplate.objects.get(key="billing_invoice_monthly")
    url = reverse("admin:notifications_emailtemplate_change", args=[template.pk])
    response = admin_client.post(url, template_form(template, name="Facture mensuelle"))
    assert response.status_code == 302, response.content.decode()[:3000]
    saved = EmailTemplate.objects.get(pk=template.pk)
    assert saved.name == "Facture mensuelle"
    assert (saved.required_variables, saved.optional_variables, saved.sample_variables) == (
        template.required_variables, template.optional_variables, template.sample_variables)
    assert template.versions.count() == 1


def test_rows_become_lists_and_mappings_with_the_value_rule(admin_client, default_templates):
    """Empty rows are dropped; a value that is a JSON list or object is taken as one, anything else is text."""
    template = EmailTemplate.objects.get(key="billing_invoice_monthly")
    url = reverse("admin:notifications_emailtemplate_change", args=[template.pk])
    samples = [*template.sample_variables.items(), ("", ""), ("lines", '[{"sku": "A1", "qty": 2}]'),
               ("count", "42"), ("note", "[brouillon")]
    response = admin_client.post(url, template_form(
        template, extra_recipients=["", "compta@rgz.bj", ""], sample_variables=samples))
    assert response.status_code == 302, response.content.decode()[:3000]
    saved = EmailTemplate.objects.get(pk=template.pk)
    assert saved.extra_recipients == ["compta@rgz.bj"]
    assert saved.sample_variables["lines"] == [{"sku": "A1", "qty": 2}]
    assert saved.sample_variables["count"] == "42" and saved.sample_variables["note"] == "[brouillon"


@pytest.mark.parametrize("field, value, says", [
    ("required_variables", ["month", "not a name"], "Row 2: 'not a name' is not a variable name"),
    ("required_variables", ["month", "month"], "Row 2: 'month' is listed twice"),
    ("optional_variables", [("not a name", "x")], "Row 1: 'not a name' is not a variable name"),
    ("optional_variables", [("invoice_date", "{{ today }}"), ("", "orphan")], "Row 2: a value without a name"),
    ("optional_variables", [("month", "x"), ("invoice_date", "{{ today }}")], "both required and optional"),
    ("sensitive_variables", ["nope"], "Not declared"),
    ("extra_recipients", ["not-an-address"], "Invalid email address"),
    ("sample_variables", [("month", "a"), ("month", "b")], "Row 2: 'month' is given twice"),
    ("sample_variables", [("deep", "[" * 40 + "]" * 40)], "Row 1: Nested deeper than 32 levels"),
    ("sample_variables", [("month", "a\x00b")], "NUL"),
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
    assert template.versions.count() == 1
