"""Stale saves refused (issue 18): two editors open one template and both save, in the admin
and through the API. The second is refused naming who saved what and when, the first's
version stays active, and nothing is written; a save with no precondition still works over
the API and says it was unconditional.
"""
from __future__ import annotations

import html
import re

import pytest
from django.test import Client
from django.urls import reverse

from notifications.access.groups import TEMPLATE_EDITORS
from notifications.models import EmailTemplate, EmailTemplateVersion, TemplateVersionActivation
from notifications.tests.support.admin_forms import editor_form
from notifications.tests.support.api import ApiClient, assert_matches_schema, create_key, make_user

pytestmark = pytest.mark.django_db

KEY = "billing_invoice_monthly"
PATH = f"/api/v1/email/templates/{KEY}"


@pytest.fixture
def template(default_templates) -> EmailTemplate:
    return EmailTemplate.objects.get(key=KEY)


def staff_client(username: str) -> Client:
    user = make_user(username, TEMPLATE_EDITORS)
    user.is_staff = True
    user.save()
    client = Client(headers={"Accept-Language": "en"})
    client.force_login(user)
    return client


def change_url(template: EmailTemplate) -> str:
    return reverse("admin:notifications_emailtemplate_change", args=[template.pk])


def opened_state(page: str) -> str:
    return re.search(r'name="opened_state" value="([^"]+)"', page).group(1)


def active(template: EmailTemplate, language: str = "fr") -> EmailTemplateVersion:
    return template.versions.get(language=language, is_active=True)


def written(template: EmailTemplate) -> tuple:
    return (list(template.versions.order_by("language", "version").values_list("pk", "is_active")),
            TemplateVersionActivation.objects.count(),
            EmailTemplate.objects.filter(pk=template.pk).values().get())


# --- the admin editor --------------------------------------------------------------------------------


def test_two_editors_change_the_french_wording_the_second_save_is_refused(template):
    alice, bob = staff_client("alice"), staff_client("bob")
    original = active(template)
    alice_page = alice.get(change_url(template)).content.decode()
    bob_page = bob.get(change_url(template)).content.decode()
    assert opened_state(alice_page) == opened_state(bob_page)

    alice_html = original.html_content.replace("Merci pour votre confiance!", "Merci de votre confiance, Alice.")
    saved = alice.post(change_url(template), editor_form(
        template, opened_state=opened_state(alice_page), wording={"fr": {"html_content": alice_html}}))
    assert saved.status_code == 302
    alices = active(template)
    assert alices.version == 2 and alices.created_by.username == "alice"
    before = written(template)

    bob_html = original.html_content.replace("Cordialement,", "Bien à vous, Bob,")
    refused = bob.post(change_url(template), editor_form(
        template, opened_state=opened_state(bob_page), wording={"fr": {"html_content": bob_html}}))
    assert refused.status_code == 200
    page = html.unescape(refused.content.decode())
    assert f"Not saved: this template changed after you opened it: {KEY} [fr] v2 was saved by alice at " in page
    assert written(template) == before and active(template) == alices  # the first's version stays active
    # Bob's own text is still on the page, to merge by hand, with a link to what Alice changed.
    assert "Bien à vous, Bob," in page
    diff = reverse("admin:notifications_emailtemplate_diff", args=[template.pk])
    assert f"{diff}?a={original.pk}&b={alices.pk}" in page
    # The page now carries the state Bob has seen: once merged, his save goes through.
    merged = alice_html.replace("Cordialement,", "Bien à vous, Bob,")
    again = bob.post(change_url(template), editor_form(
        template, opened_state=opened_state(refused.content.decode()), wording={"fr": {"html_content": merged}}))
    assert again.status_code == 302
    assert (active(template).version, active(template).html_content) == (3, merged)


def test_a_change_of_the_settings_or_a_rollback_makes_an_open_page_stale_too(template):
    alice, bob = staff_client("alice"), staff_client("bob")
    name = template.name
    bob_page = bob.get(change_url(template)).content.decode()
    assert alice.post(change_url(template), editor_form(template, description="Changée par Alice")).status_code == 302
    refused = bob.post(change_url(template), editor_form(
        template, opened_state=opened_state(bob_page), name="Changé par Bob"))
    page = html.unescape(refused.content.decode())
    assert refused.status_code == 200 and "the template's settings were saved by alice at" in page
    template.refresh_from_db()
    assert (template.description, template.name) == ("Changée par Alice", name)

    first = active(template)
    assert alice.post(change_url(template), editor_form(
        template, wording={"fr": {"subject": first.subject + " !"}})).status_code == 302
    bob_page = bob.get(change_url(template)).content.decode()
    activate = reverse("admin:notifications_emailtemplate_activate", args=[template.pk])
    assert alice.post(activate, {"version": first.pk, "confirmed": "yes"}).status_code == 302
    refused = bob.post(change_url(template), editor_form(template, opened_state=opened_state(bob_page)))
    assert f"{KEY} [fr] v1 was made active again by alice at" in html.unescape(refused.content.decode())


def test_a_form_that_does_not_say_what_it_was_opened_on_is_refused(template):
    editor = staff_client("editor")
    body = editor_form(template, wording={"fr": {"subject": "Nouvelle facture {{ month }} {{ year }}"}})
    del body["opened_state"]
    response = editor.post(change_url(template), body)
    assert response.status_code == 200
    assert "does not say which versions it was opened on" in html.unescape(response.content.decode())
    assert template.versions.count() == 1


def test_a_save_under_the_lock_that_finds_the_page_stale_shows_the_text_again(template, monkeypatch):
    """The form's check passed (another save came after it, as on SQLite with no row lock):
    the service's own check refuses, and the page is shown again with the editor's text."""
    from notifications.admin.editor_forms import TemplateEditorForm

    editor = staff_client("editor")
    page = editor.get(change_url(template)).content.decode()
    other = staff_client("other")
    assert other.post(change_url(template), editor_form(template, description="autre")).status_code == 302
    checks, real = [], TemplateEditorForm._refuse_if_stale

    def passes_the_first_time(form) -> bool:
        checks.append(form)
        return True if len(checks) == 1 else real(form)

    monkeypatch.setattr(TemplateEditorForm, "_refuse_if_stale", passes_the_first_time)
    response = editor.post(change_url(template), editor_form(
        template, opened_state=opened_state(page), wording={"fr": {"subject": "Mon sujet {{ month }} {{ year }}"}}))
    assert response.status_code == 200 and len(checks) == 2
    content = html.unescape(response.content.decode())
    assert "the template's settings were saved by other" in content and "Mon sujet {{ month }}" in content
    assert template.versions.count() == 1


def test_the_version_form_opened_from_a_version_refuses_a_save_after_another(template):
    alice, bob = staff_client("alice"), staff_client("bob")
    original = active(template)
    add = reverse("admin:notifications_emailtemplateversion_add")
    page = bob.get(add, {"from_version": original.pk}).content.decode()
    assert re.search(r'name="base_version" value="1"', page)
    assert alice.post(change_url(template), editor_form(
        template, wording={"fr": {"subject": "Facture {{ month }} {{ year }}"}})).status_code == 302
    before = written(template)
    body = {"template": template.pk, "language": "fr", "subject": "Ma facture {{ month }} {{ year }}",
            "preheader": original.preheader, "html_content": original.html_content,
            "text_content": original.text_content, "base_version": "1"}
    refused = bob.post(add, body)
    content = html.unescape(refused.content.decode())
    assert refused.status_code == 200 and f"{KEY} [fr] v2 was saved by alice at" in content
    assert "Ma facture {{ month }} {{ year }}" in content and 'name="base_version" value="2"' in content
    assert written(template) == before
    assert bob.post(add, {**body, "base_version": "2"}).status_code == 302
    assert active(template).subject == "Ma facture {{ month }} {{ year }}"


# --- the API -----------------------------------------------------------------------------------------


@pytest.fixture
def editors(template):
    return (ApiClient(create_key(make_user("editor-a", TEMPLATE_EDITORS))),
            ApiClient(create_key(make_user("editor-b", TEMPLATE_EDITORS))))


def wording(template: EmailTemplate, text: str) -> dict:
    version = active(template)
    return {"language": "fr", "subject": version.subject, "preheader": version.preheader,
            "html_content": version.html_content + f"<p>{text}</p>", "text_content": version.text_content}


def test_two_puts_with_the_same_etag_the_second_is_a_409_naming_the_first(template, editors):
    first, second = editors
    read = first.get(PATH)
    etag = read["ETag"]
    assert re.fullmatch(r'"fr1~[0-9a-f]{12}"', etag) and second.get(PATH)["ETag"] == etag

    saved = first.put(PATH, wording(template, "A"), headers={"If-Match": etag})
    assert saved.status_code == 200, saved.json()
    assert_matches_schema("PUT", PATH, saved)
    assert saved.json()["version"] == 2 and saved.json()["unconditional"] is False
    assert saved["ETag"] != etag and saved["ETag"] == first.get(PATH)["ETag"]
    before = written(template)

    stale = second.put(PATH, wording(template, "B"), headers={"If-Match": etag})
    assert stale.status_code == 409
    body = stale.json()
    assert body["codes"] == {"detail": "stale_version"}
    assert f"{KEY} [fr] v2 was saved by editor-a at" in body["detail"]
    assert body["active_version"] == {**body["active_version"], "language": "fr", "version": 2,
                                      "id": saved.json()["id"], "saved_by": "editor-a", "rollback": False}
    assert [change["version"] for change in body["changes"]] == [2]
    assert written(template) == before and active(template).html_content.endswith("<p>A</p>")
    # With the new ETag, the second editor's merged wording goes through.
    merged = second.put(PATH, wording(template, "B"), headers={"If-Match": saved["ETag"]})
    assert merged.status_code == 200 and merged.json()["version"] == 3


def test_base_version_refuses_a_stale_put_in_its_language_only(template, editors):
    first, second = editors
    french = active(template)
    english = {"language": "en", "subject": "Invoice {{ month }} {{ year }}", "preheader": french.preheader,
               "html_content": french.html_content, "text_content": french.text_content, "base_version": 0}
    assert second.put(PATH, english).status_code == 200  # no English version yet: based on none
    assert first.put(PATH, wording(template, "A"), headers={"If-Match": first.get(PATH)["ETag"]}).status_code == 200
    stale = second.put(PATH, {**wording(template, "B"), "base_version": 1})
    assert stale.status_code == 409 and stale.json()["active_version"]["version"] == 2
    assert [change["language"] for change in stale.json()["changes"]] == ["fr"]
    assert "[fr] v2 was saved by editor-a" in stale.json()["detail"]
    english_again = {**english, "html_content": french.html_content + "<p>en</p>", "base_version": 1}
    assert second.put(PATH, english_again).status_code == 200  # English had not changed
    current = second.put(PATH, {**wording(template, "B"), "base_version": 2})
    assert current.status_code == 200 and current.json()["unconditional"] is False


def test_a_put_without_a_precondition_still_works_and_says_it_was_unconditional(template, editors):
    first, _second = editors
    response = first.put(PATH, wording(template, "A"))
    assert response.status_code == 200 and response.json()["unconditional"] is True
    assert first.put(PATH, wording(template, "B"), headers={"If-Match": "*"}).json()["unconditional"] is False
    # A PUT is recorded as an activation, as an editor's save is: the 409s name who it was.
    activation = TemplateVersionActivation.objects.filter(template=template).latest("activated_at")
    assert (activation.activated_by.username, activation.version.version) == ("editor-a", 3)


@pytest.mark.parametrize("header", ["en1.fr1~0123456789ab", '"unclosed', 'W/"a", b'])
def test_a_malformed_if_match_is_a_400_naming_the_header(template, editors, header):
    first, _second = editors
    response = first.put(PATH, wording(template, "A"), headers={"If-Match": header})
    assert response.status_code == 400
    assert response.json()["codes"] == {"If-Match": ["invalid_precondition"]}
    assert template.versions.count() == 1


def test_an_etag_read_before_a_change_of_the_settings_is_stale(template, editors):
    first, _second = editors
    etag = first.get(PATH)["ETag"]
    alice = staff_client("alice")
    assert alice.post(change_url(template), editor_form(template, description="autre")).status_code == 302
    response = first.put(PATH, wording(template, "A"), headers={"If-Match": etag})
    assert response.status_code == 409
    assert "the template's settings were saved by alice" in response.json()["detail"]
    weak = first.put(PATH, wording(template, "A"), headers={"If-Match": "W/" + first.get(PATH)["ETag"]})
    assert weak.status_code == 200  # a proxy may weaken the tag: it names the same state


def test_the_409_speaks_french_by_default(template):
    client = ApiClient(create_key(make_user("redactrice", TEMPLATE_EDITORS)), language=None)
    etag = client.get(PATH)["ETag"]
    assert client.put(PATH, wording(template, "A"), headers={"If-Match": etag}).status_code == 200
    refused = client.put(PATH, wording(template, "B"), headers={"If-Match": etag})
    assert refused.status_code == 409 and "enregistrée par redactrice" in refused.json()["detail"]
