"""The template editor in the admin (issue 12): editing with versions in one save, the history,
diffs, previews, rollbacks and test sends, and who may do each (every POST of an Auditor refused).

Test sends are read from a real SMTP server (aiosmtpd); a preview is checked against one too:
it must never connect.
"""
from __future__ import annotations

import html
import re

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Permission
from django.urls import reverse

from notifications.access.groups import ADMINISTRATORS, AUDITORS, SENDERS, TEMPLATE_EDITORS
from notifications.models import Message, EmailTemplate, EmailTemplateVersion, TemplateVersionActivation
from notifications.tests.support.admin_forms import editor_form
from notifications.tests.support.api import make_user

pytestmark = pytest.mark.django_db

KEY = "billing_invoice_monthly"
SCRIPT = "<script>alert(1)</script><img src=http://127.0.0.1:9/x>"


def staff(client, username: str, *groups: str, email: str = ""):
    user = make_user(username, *groups)
    user.is_staff = True
    user.email = email or f"{username}@rgz.bj"
    user.save()
    client.force_login(user)
    return user


@pytest.fixture
def template(default_templates) -> EmailTemplate:
    return EmailTemplate.objects.get(key=KEY)


@pytest.fixture
def editor(client, template):
    staff(client, "editor", TEMPLATE_EDITORS)
    return client


def url(name: str, *args) -> str:
    return reverse(f"admin:notifications_emailtemplate_{name}", args=args)


def active(template: EmailTemplate, language: str = "fr") -> EmailTemplateVersion:
    return template.versions.get(language=language, is_active=True)


def snapshot(template: EmailTemplate) -> tuple:
    """Everything an edit or an action could write: the template row, its versions, activations, messages."""
    return (
        EmailTemplate.objects.filter(pk=template.pk).values().get(),
        list(template.versions.order_by("language", "version").values("pk", "version", "is_active")),
        TemplateVersionActivation.objects.count(),
        Message.objects.count(),
    )


def errors_of(response) -> dict:
    return response.context["adminform"].form.errors


# --- the editor page -------------------------------------------------------------------------------


def test_the_editor_shows_each_language_beside_a_sandboxed_preview_and_rows_not_json(editor, template):
    page = editor.get(url("change", template.pk)).content.decode()
    current = active(template)
    assert 'name="version_fr_subject"' in page and html.escape(current.subject, quote=True) in page
    assert 'name="version_fr_html_content"' in page and 'name="version_en_html_content"' in page
    frame = re.search(r"<iframe[^>]*>", page.split('id="template-editor"')[1]).group(0)
    assert 'sandbox=""' in frame and "allow-scripts" not in frame and "allow-same-origin" not in frame
    assert "notifications/template_editor.js" in page
    # Lists are one input per row, mappings name/value rows: no JSON to type.
    assert page.count('<input type="text" name="required_variables"') == len(template.required_variables) + 1
    assert 'name="sample_variables__name" value="reseller_name"' in page
    assert 'name="optional_variables__value" value="{{ today }}"' in page
    assert "&quot;reseller_name&quot;:" not in page and '"reseller_name":' not in page  # no JSON to edit
    assert url("editor_preview") in page and url("test_send", template.pk) in page


def test_saving_changed_wording_adds_a_version_and_keeps_the_old_one_read_only(editor, template):
    old = active(template)
    new_html = old.html_content.replace("Merci pour votre confiance!", "Merci de votre confiance !")
    response = editor.post(url("change", template.pk), editor_form(template, wording={"fr": {"html_content": new_html}}))
    assert response.status_code == 302, errors_of(response)
    user = response.wsgi_request.user
    versions = list(template.versions.order_by("version"))
    assert [(v.version, v.is_active) for v in versions] == [(1, False), (2, True)]
    assert versions[0].html_content == old.html_content  # the old one stays as it was
    assert versions[1].html_content == new_html and versions[1].created_by == user
    [activation] = TemplateVersionActivation.objects.all()
    assert (activation.version, activation.previous_version, activation.activated_by, activation.rollback) == (
        versions[1], versions[0], user, False)
    template.refresh_from_db()
    assert template.updated_by == user
    # The history lists both, the new one with who; the activation is shown.
    page = editor.get(url("change", template.pk)).content.decode()
    assert "Make this version active" in page and "Activations (edits and rollbacks)" in page
    assert f"{KEY} [fr] v2" in page


def test_a_save_made_stale_by_another_is_refused_under_the_lock_not_a_500(editor, template, monkeypatch):
    """The form was checked before another editor's save changed the template: the save's own
    check, under the template's lock, refuses it and writes nothing."""
    from django import forms

    from notifications.admin.editor_forms import TemplateEditorForm

    monkeypatch.setattr(TemplateEditorForm, "_post_clean", forms.ModelForm._post_clean)  # the stale check
    before = snapshot(template)
    response = editor.post(url("change", template.pk), editor_form(
        template, required_variables=[*template.required_variables, "contract_ref"]), follow=True)
    assert response.status_code == 200
    page = html.unescape(response.content.decode())
    assert f"Nothing was saved: {KEY} [fr] v1, the active version, would no longer fit" in page
    assert snapshot(template) == before


def test_the_plain_version_form_records_its_activation_too(editor, template):
    old = active(template)
    response = editor.post(reverse("admin:notifications_emailtemplateversion_add"), {
        "template": template.pk, "language": "fr", "subject": "Votre " + old.subject, "preheader": old.preheader,
        "html_content": old.html_content, "text_content": old.text_content})
    assert response.status_code == 302, response.content.decode()[:2000]
    [activation] = TemplateVersionActivation.objects.all()
    assert (activation.version, activation.previous_version, activation.rollback) == (active(template), old, False)


def test_a_template_editor_reads_the_activations_and_changes_none(editor, template):
    """Who made which version active is theirs to read (the list of rollbacks), never to write."""
    activations = reverse("admin:notifications_templateversionactivation_changelist")
    assert editor.get(activations).status_code == 200
    assert editor.get(reverse("admin:notifications_templateversionactivation_add")).status_code == 403


def test_the_history_costs_the_same_queries_however_many_versions(editor, template, django_assert_max_num_queries):
    for number in range(3):
        second_version(editor, template, active(template).html_content + f"<p>{number}</p>")
    with django_assert_max_num_queries(40) as queries:
        assert editor.get(url("change", template.pk)).status_code == 200
    few = len(queries)
    for number in range(3, 8):
        second_version(editor, template, active(template).html_content + f"<p>{number}</p>")
    with django_assert_max_num_queries(few):
        assert editor.get(url("change", template.pk)).status_code == 200


def test_saving_the_same_wording_adds_no_version(editor, template):
    response = editor.post(url("change", template.pk), editor_form(template, name="Facture"))
    assert response.status_code == 302, errors_of(response)
    assert template.versions.count() == 1 and not TemplateVersionActivation.objects.exists()


def test_adding_a_required_variable_and_using_it_is_one_save(editor, template):
    old = active(template)
    samples = {**template.sample_variables, "contract_ref": "CT-2026-7"}
    response = editor.post(url("change", template.pk), editor_form(
        template,
        required_variables=[*template.required_variables, "contract_ref"],
        sample_variables=samples,
        wording={"fr": {"html_content": old.html_content + "\n<p>Contrat {{ contract_ref }}</p>"}},
    ))
    assert response.status_code == 302, errors_of(response)
    template.refresh_from_db()
    assert "contract_ref" in template.required_variables
    new = active(template)
    assert new.version == 2 and "{{ contract_ref }}" in new.html_content


def test_a_declaration_that_breaks_the_active_version_is_refused_naming_it(editor, template):
    before = snapshot(template)
    response = editor.post(url("change", template.pk), editor_form(
        template, required_variables=[*template.required_variables, "contract_ref"],
        sample_variables={**template.sample_variables, "contract_ref": "x"},
    ))
    assert response.status_code == 200
    message = " ".join(errors_of(response)["__all__"])
    assert f"{KEY} [fr] v1" in message and "does not use declared variables: contract_ref" in message
    assert snapshot(template) == before


@pytest.mark.parametrize("part, value, shown_at, says", [
    ("html_content", "<p>{{ month.__class__ }}</p>", "version_fr_html_content", "[fr]: The HTML, line 1, reaches '__class__'"),
    ("subject", "Facture {{ month } {{ year }}", "version_fr_subject", "[fr]: Syntax error in the subject, line 1"),
    ("subject", "", "version_fr_subject", "[fr]: A subject is required"),
    # What concerns the whole wording (its use of the declarations) is said above the form.
    ("html_content", "<p>{{ reseller_nam }}</p>", "__all__", "[fr]: The version uses undeclared variables: reseller_nam"),
])
def test_refused_wording_is_an_error_beside_the_part_and_nothing_is_saved(
    editor, template, part, value, shown_at, says
):
    before = snapshot(template)
    response = editor.post(url("change", template.pk), editor_form(template, wording={"fr": {part: value}}))
    assert response.status_code == 200
    errors = errors_of(response)
    assert shown_at in errors, errors
    assert says in " ".join(errors[shown_at])
    assert snapshot(template) == before
    assert value in response.content.decode() or html.escape(value) in response.content.decode()


def test_a_new_language_is_added_as_its_first_version(editor, template):
    fr = active(template)
    response = editor.post(url("change", template.pk), editor_form(template, wording={"en": {
        "subject": "RGZ invoice — {{ month }} {{ year }}", "html_content": fr.html_content, "text_content": "",
        "preheader": ""}}))
    assert response.status_code == 302, errors_of(response)
    assert active(template, "en").version == 1 and active(template, "fr") == fr


def test_a_new_template_is_made_with_its_first_version_in_one_save(editor, template):
    data = editor_form(template, key="billing_reminder", name="Relance", wording={"fr": {
        "subject": "Relance {{ month }} {{ year }}"}})
    response = editor.post(reverse("admin:notifications_emailtemplate_add"), data)
    assert response.status_code == 302, errors_of(response)
    made = EmailTemplate.objects.get(key="billing_reminder")
    [version] = made.versions.all()
    assert (version.version, version.is_active, version.subject) == (1, True, "Relance {{ month }} {{ year }}")
    assert made.created_by == made.updated_by == version.created_by == response.wsgi_request.user
    assert TemplateVersionActivation.objects.get(template=made).previous_version is None


def test_without_the_add_version_permission_a_change_of_wording_is_refused(client, template):
    user = staff(client, "half")
    user.user_permissions.add(*Permission.objects.filter(
        codename__in=["view_emailtemplate", "change_emailtemplate"]))
    before = snapshot(template)
    response = client.post(url("change", template.pk), editor_form(
        template, wording={"fr": {"subject": "Facture {{ month }} {{ year }}"}}))
    assert response.status_code == 200
    assert "you may not add template versions" in " ".join(errors_of(response)["__all__"])
    assert snapshot(template) == before


# --- history, diff, preview ------------------------------------------------------------------------


def second_version(editor, template, html_content: str) -> EmailTemplateVersion:
    response = editor.post(url("change", template.pk), editor_form(
        template, wording={"fr": {"html_content": html_content}}))
    assert response.status_code == 302, errors_of(response)
    return active(template)


def test_the_history_log_names_only_the_parts_that_changed_as_a_browser_posts_them(editor, template):
    """Issue 18: "Changed Subject, HTML and Text" when the text was identical in the database.
    A browser posts every textarea with CRLF line endings; the stored text has LF."""
    old = active(template)
    assert "\n" in old.text_content and "\n" in old.html_content
    body = editor_form(template, wording={"fr": {
        "subject": "Votre facture RGZ — {{ month }} {{ year }}",
        "html_content": old.html_content.replace("Merci pour votre confiance!", "Merci !"),
    }})
    for part in ("html_content", "text_content"):  # as the browser sends a textarea
        body[f"version_fr_{part}"] = body[f"version_fr_{part}"].replace("\n", "\r\n")
    response = editor.post(url("change", template.pk), body)
    assert response.status_code == 302, errors_of(response)
    assert active(template).text_content == old.text_content
    entry = LogEntry.objects.filter(object_id=str(template.pk), action_flag=CHANGE).latest("action_time")
    message = entry.get_change_message()
    assert "Subject (fr)" in message and "HTML (fr)" in message, message
    assert "Text" not in message, message
    # Posting it again as it now is changes nothing: no version, and nothing named in the log.
    again = editor_form(template)
    for part in ("html_content", "text_content"):
        again[f"version_fr_{part}"] = again[f"version_fr_{part}"].replace("\n", "\r\n")
    assert editor.post(url("change", template.pk), again).status_code == 302
    assert template.versions.count() == 2
    latest = LogEntry.objects.filter(object_id=str(template.pk), action_flag=CHANGE).latest("action_time")
    assert latest.get_change_message() == "No fields changed."


def test_the_diff_shows_what_changed_between_any_two_versions_escaped(editor, template):
    old = active(template)
    new = second_version(editor, template, old.html_content.replace("<p>Merci pour votre confiance!</p>",
                                                                     "<p>Merci <b>beaucoup</b>!</p>"))
    page = editor.get(url("diff", template.pk) + f"?a={old.pk}&b={new.pk}").content.decode()
    assert '<span class="diff-del">-&lt;p&gt;Merci pour votre confiance!&lt;/p&gt;</span>' in page
    assert '<span class="diff-add">+&lt;p&gt;Merci &lt;b&gt;beaucoup&lt;/b&gt;!&lt;/p&gt;</span>' in page
    assert "<b>beaucoup</b>" not in page
    assert page.count("No difference.") == 3  # subject, preheader, text unchanged
    # The history links each version to its diff with the previous one.
    history = editor.get(url("change", template.pk)).content.decode()
    assert html.escape(f"{url('diff', template.pk)}?a={old.pk}&b={new.pk}") in history


def test_the_first_versions_diff_link_compares_it_with_nothing_not_with_itself(editor, template):
    """Issue 18: version 1's "Diff" link compared it with itself ("No difference" everywhere)."""
    first = active(template)
    history = editor.get(url("change", template.pk)).content.decode()
    [link] = re.findall(r'href="([^"]*/diff/\?[^"]*)"', history)
    page = html.unescape(editor.get(html.unescape(link)).content.decode())
    assert "No difference." not in page
    assert f"+{first.subject}" in page and f"+{first.text_content.splitlines()[0]}" in page
    assert f"Differences between nothing (before the first version) and {KEY} [fr] v1" in page
    # Asked for on purpose, a version with itself says so rather than "No difference" four times.
    same = html.unescape(editor.get(url("diff", template.pk) + f"?a={first.pk}&b={first.pk}").content.decode())
    assert "the same version on both sides" in same and "No difference." not in same


def test_a_version_previews_with_its_samples_or_typed_variables_narrow_and_wide(editor, template):
    old = active(template)
    second_version(editor, template, old.html_content.replace("Bonjour", "Salut"))
    page = editor.get(url("version_preview", template.pk, old.pk)).content.decode()
    assert "Facture RGZ — février 2026" in page
    frames = re.findall(r"<iframe[^>]*>", page)
    assert len(frames) == 2 and all('sandbox=""' in frame for frame in frames)
    assert "Bonjour Tech Connect SA" in html.unescape(frames[0]) and "Salut" not in page
    assert 'style="width:375px"' in page and 'style="width:800px"' in page
    assert "Bonjour Tech Connect SA" in page.split('class="preview-text"')[1]  # the text part

    samples = {**template.sample_variables, "month": "mars", "reseller_name": SCRIPT}
    typed = {"variables__name": list(samples), "variables__value": list(samples.values())}
    page = editor.get(url("version_preview", template.pk, old.pk), typed).content.decode()
    assert "Facture RGZ — mars 2026" in page
    # The script is text inside the sandboxed frame, escaped twice (by Jinja, then in srcdoc): it never runs.
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" not in html.unescape(page).split(
        "srcdoc=")[0]
    assert "&amp;lt;script&amp;gt;alert(1)" in page


def test_the_live_preview_renders_a_draft_and_never_connects_to_a_mail_server(
    editor, template, smtp_backend, django_capture_on_commit_callbacks
):
    current = active(template)
    draft = {
        "template": str(template.pk), "language": "fr", "subject": "Brouillon {{ month }}",
        "preheader": "", "html_content": current.html_content.replace("Bonjour", "Bonsoir"), "text_content": "",
        "variables__name": list(template.sample_variables), "variables__value": list(template.sample_variables.values()),
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = editor.post(url("editor_preview"), draft)
    assert response.status_code == 200
    body = response.json()
    assert body["errors"] == [] and body["subject"] == "Brouillon février"
    assert "Bonsoir Tech Connect SA" in body["html"] and "Bonsoir Tech Connect SA" in body["text"]
    assert not Message.objects.exists()
    assert smtp_backend.connections == 0 and smtp_backend.received == []


@pytest.mark.parametrize("change, says", [
    ({"html_content": "<p>{{ month.__class__ }}</p>"}, "The HTML, line 1, reaches '__class__'"),
    ({"html_content": "<p>ok</p>\n{% if %}"}, "Syntax error in the HTML, line 2"),
    ({"variables__name": ["month"], "variables__value": ["x"]}, "reseller_name"),
    ({"html_content": "{% for i in range(99999) %}{% for j in range(99999) %}x{% endfor %}{% endfor %}"},
     "TEMPLATE_RENDER_MAX_"),
    ({"variables__name": ["", "a"], "variables__value": ["x", "y"]}, "variables: Row 1: a value without a name"),
])
def test_the_live_preview_answers_errors_naming_the_part_never_a_500(editor, template, change, says):
    current = active(template)
    draft = {"template": str(template.pk), "language": "fr", "subject": current.subject,
             "html_content": current.html_content,
             "variables__name": list(template.sample_variables),
             "variables__value": list(template.sample_variables.values()), **change}
    response = editor.post(url("editor_preview"), draft)
    assert response.status_code == 200
    body = response.json()
    shown = " ".join(body["errors"] + [problem["detail"] for problem in body["problems"]])
    assert says in shown, body


def test_the_live_preview_names_the_line_to_highlight_and_says_the_budget_in_one_sentence(editor, template):
    current = active(template)
    draft = {"template": str(template.pk), "language": "fr", "subject": current.subject,
             "variables__name": list(template.sample_variables),
             "variables__value": list(template.sample_variables.values())}
    syntax = editor.post(url("editor_preview"), {**draft, "html_content": "<p>ok</p>\n<p>ok</p>\n{% if %}"}).json()
    assert [(p["part"], p["line"]) for p in syntax["problems"]] == [("html_content", 3)]
    loops = "{% for i in range(99999) %}{% for j in range(99999) %}x{% endfor %}{% endfor %}"
    budget = editor.post(url("editor_preview"), {**draft, "html_content": loops}).json()
    assert budget["errors"] == ["This template does too much work to render (loops or macros that repeat too "
                                "often): simplify it."]
    [problem] = budget["problems"]
    assert "TEMPLATE_RENDER_MAX_OPERATIONS" in problem["detail"] and "TEMPLATE_RENDER" not in problem["message"]


def test_the_live_preview_takes_a_json_draft_too(editor, template):
    draft = {"template": str(template.pk), "language": "fr", "subject": "{{ a }} {{ n }}",
             "html_content": "<p>{% for x in items %}{{ x.sku }}{% endfor %} {{ b }}</p>",
             "declarations": True, "required_variables": ["a", "items", "n"], "optional_variables": {"b": "défaut"},
             "layout": "", "variables": {"a": "A", "n": 3, "items": [{"sku": "S1"}, {"sku": "S2"}]}}
    body = editor.post(url("editor_preview"), draft, content_type="application/json").json()
    assert body["errors"] == [] and body["subject"] == "A 3" and body["html"] == "<p>S1S2 défaut</p>"
    for raw, says in [("[1]", "a JSON object"), ("{", "not valid JSON")]:
        answer = editor.post(url("editor_preview"), raw, content_type="application/json")
        assert answer.status_code == 200 and says in " ".join(answer.json()["errors"]), (raw, answer.json())
    # Too deep, or a NUL, never reaches the view: the input middleware answers first, as for the API.
    for raw, says in [("[" * 40 + "]" * 40, "API_MAX_JSON_DEPTH"), ('{"variables": {"a": "x\\u0000"}}', "NUL")]:
        answer = editor.post(url("editor_preview"), raw, content_type="application/json")
        assert answer.status_code == 400 and says in answer.content.decode()


def test_the_live_preview_follows_declarations_being_edited(editor, template):
    draft = {"template": str(template.pk), "language": "fr", "subject": "{{ a }}", "html_content": "<p>{{ b }}</p>",
             "declarations": "on", "required_variables": ["a"], "optional_variables__name": ["b"],
             "optional_variables__value": ["défaut"], "layout": "", "variables__name": ["a"],
             "variables__value": ["A"]}
    body = editor.post(url("editor_preview"), draft).json()
    assert body["errors"] == [] and body["subject"] == "A" and body["html"] == "<p>défaut</p>"


# --- rollback ---------------------------------------------------------------------------------------


def test_a_rollback_asks_first_and_without_confirmation_changes_nothing(editor, template):
    old = active(template)
    new = second_version(editor, template, old.html_content.replace("Bonjour", "Salut"))
    before = snapshot(template)
    log = LogEntry.objects.count()
    # The history's button posts the whole editor form to the action, as a browser does.
    for method, body in (("post", {**editor_form(template), "version": old.pk}), ("get", {"version": old.pk}),
                         ("post", {"version": old.pk, "confirmed": "no"})):
        response = getattr(editor, method)(url("activate", template.pk), body)
        assert response.status_code == 200, (method, body)
        page = html.unescape(response.content.decode())
        assert f"Make {KEY} [fr] v1 the active version again?" in page
        assert f"It replaces {KEY} [fr] v2, which stays in the history." in page
        assert f"{url('diff', template.pk)}?a={new.pk}&b={old.pk}" in page
        assert 'name="confirmed" value="yes"' in page and "Yes, make it active" in page
    assert snapshot(template) == before and LogEntry.objects.count() == log
    assert editor.post(url("activate", template.pk), {"version": old.pk, "confirmed": "yes"}).status_code == 302
    assert active(template) == old


def test_making_an_old_version_active_again_is_recorded(editor, template):
    old = active(template)
    new = second_version(editor, template, old.html_content.replace("Bonjour", "Salut"))
    response = editor.post(url("activate", template.pk), {"version": old.pk, "confirmed": "yes"}, follow=True)
    assert f"Version {KEY} [fr] v1 is the active one again." in response.content.decode()
    assert active(template) == old
    new.refresh_from_db()
    assert not new.is_active and new.html_content.startswith(old.html_content[:10])
    rollback = TemplateVersionActivation.objects.get(rollback=True)
    assert (rollback.version, rollback.previous_version, rollback.activated_by) == (
        old, new, response.wsgi_request.user)
    entry = LogEntry.objects.filter(object_id=str(template.pk), action_flag=CHANGE).latest("action_time")
    assert f"{KEY} [fr] v1" in entry.get_change_message()
    assert "yes" in response.content.decode().split('id="activations"')[1]


def test_a_version_that_no_longer_fits_cannot_be_made_active(editor, template):
    old = active(template)
    response = editor.post(url("change", template.pk), editor_form(
        template, required_variables=[*template.required_variables, "contract_ref"],
        sample_variables={**template.sample_variables, "contract_ref": "x"},
        wording={"fr": {"html_content": old.html_content + "<p>{{ contract_ref }}</p>"}}))
    assert response.status_code == 302, errors_of(response)
    before = snapshot(template)
    page = editor.post(url("activate", template.pk), {"version": old.pk, "confirmed": "yes"},
                       follow=True).content.decode()
    assert f"Version {KEY} [fr] v1 cannot be made active" in html.unescape(page)
    assert "does not use declared variables: contract_ref" in html.unescape(page)
    assert snapshot(template) == before


# --- test sends -------------------------------------------------------------------------------------


def test_a_saved_version_is_sent_as_a_test_to_the_editor_only(
    editor, template, smtp_backend, django_capture_on_commit_callbacks
):
    template.extra_recipients = ["noc@rgz.bj"]
    template.save()
    version = active(template)
    with django_capture_on_commit_callbacks(execute=True):
        response = editor.post(url("test_send", template.pk), {"version": version.pk, "test_to": ""})
    assert response.status_code == 302
    [received] = smtp_backend.wait_for(1)
    assert received.rcpt_tos == ["editor@rgz.bj"]
    assert received.message["Subject"] == "Facture RGZ — février 2026"
    [message] = Message.objects.all()
    assert (message.source_endpoint, message.template_key, message.template_version, message.sent_by.username) == (
        "admin-test", KEY, version, "editor")
    assert message.status == "sent"


def test_the_draft_being_edited_is_sent_as_a_test_without_a_version(
    editor, template, smtp_backend, django_capture_on_commit_callbacks, settings
):
    settings.EMAIL_TEST_RECIPIENTS = ["qa@example.org", "@techconnect.bj"]
    form = editor_form(template, wording={"fr": {"subject": "Brouillon — {{ month }} {{ year }}"}})
    form.update(editor_language="fr", test_to="reseller@techconnect.bj")
    with django_capture_on_commit_callbacks(execute=True):
        response = editor.post(url("test_send", template.pk), form, headers={"Accept": "application/json"})
    assert response.status_code == 200 and response.json()["ok"], response.content
    [received] = smtp_backend.wait_for(1)
    assert received.rcpt_tos == ["reseller@techconnect.bj"]
    assert received.message["Subject"] == "Brouillon — février 2026"
    [message] = Message.objects.all()
    assert message.template_version is None and message.template_key == KEY
    assert message.subject == "Brouillon — février 2026" and message.source_endpoint == "admin-test"
    assert template.versions.count() == 1  # a test saves nothing


@pytest.mark.parametrize("address", ["someone@gmail.com", "qa@example.org.evil.test", "x@sub.techconnect.bj"])
def test_a_test_to_an_address_not_allowed_is_refused_naming_it_and_the_setting(editor, template, settings, address):
    settings.EMAIL_TEST_RECIPIENTS = ["qa@example.org", "@techconnect.bj"]
    response = editor.post(url("test_send", template.pk), {"version": active(template).pk, "test_to": address},
                           headers={"Accept": "application/json"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert address in error and "EMAIL_TEST_RECIPIENTS" in error
    assert not Message.objects.exists()


def test_a_test_send_without_an_address_of_ones_own_is_refused(client, template):
    user = staff(client, "noaddress", TEMPLATE_EDITORS)
    user.email = ""
    user.save()
    page = client.post(url("test_send", template.pk), {"version": active(template).pk}, follow=True)
    assert "Your account has no email address" in page.content.decode()
    assert not Message.objects.exists()


# --- groups -----------------------------------------------------------------------------------------


def actions(template: EmailTemplate) -> list[tuple[str, dict]]:
    """Every POST of the editor, with a body that would succeed for a Template editor."""
    version = active(template)
    return [
        (url("change", template.pk), editor_form(template, wording={"fr": {"subject": "X {{ month }} {{ year }}"}})),
        (url("editor_preview"), {"template": str(template.pk), "subject": "s", "html_content": "<p>h</p>",
                                 "declarations": "on", "layout": ""}),
        (url("activate", template.pk), {"version": version.pk, "confirmed": "yes"}),
        (url("test_send", template.pk), {"version": version.pk}),
        (reverse("admin:notifications_emailtemplateversion_add"), {
            "template": template.pk, "language": "fr", "subject": version.subject,
            "html_content": version.html_content}),
    ]


@pytest.mark.parametrize("group", [AUDITORS, SENDERS])
def test_every_post_of_an_auditor_or_a_sender_is_refused_and_changes_nothing(client, template, group):
    staff(client, "someone", group)
    before = snapshot(template)
    for path, body in actions(template):
        response = client.post(path, body)
        assert response.status_code == 403, (path, response.status_code)
    assert snapshot(template) == before


def test_an_auditor_reads_the_template_history_and_diff_but_gets_no_editor(client, template):
    staff(client, "auditor", AUDITORS)
    version = active(template)
    page = client.get(url("change", template.pk))
    assert page.status_code == 200
    content = page.content.decode()
    assert 'id="template-editor"' not in content and "Make this version active" not in content
    assert f"{KEY} [fr] v1" in content
    assert client.get(url("diff", template.pk)).status_code == 200
    assert client.get(url("version_preview", template.pk, version.pk)).status_code == 403
    activations = reverse("admin:notifications_templateversionactivation_changelist")
    assert client.get(activations).status_code == 200  # the audit of activations, read-only


def test_a_sender_sees_no_template_page(client, template):
    staff(client, "sender", SENDERS)
    for path in (url("change", template.pk), url("diff", template.pk),
                 url("version_preview", template.pk, active(template).pk)):
        assert client.get(path).status_code == 403, path


@pytest.mark.parametrize("group", [TEMPLATE_EDITORS, ADMINISTRATORS])
def test_template_editors_and_administrators_may_do_every_action(
    client, template, group, smtp_backend, django_capture_on_commit_callbacks
):
    staff(client, "allowed", group)
    old = active(template)
    for path in (url("change", template.pk), url("diff", template.pk), url("version_preview", template.pk, old.pk)):
        assert client.get(path).status_code == 200, path
    save, preview, _activate, _test, _add = actions(template)
    assert client.post(*save).status_code == 302
    assert client.post(*preview).json()["errors"] == []
    assert client.post(url("activate", template.pk), {"version": old.pk, "confirmed": "yes"}).status_code == 302
    assert active(template) == old
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(url("test_send", template.pk), {"version": old.pk}).status_code == 302
    assert len(smtp_backend.wait_for(1)) == 1


def test_the_editor_speaks_french_by_default(client, template):
    staff(client, "redactrice", TEMPLATE_EDITORS)
    page = client.get(url("change", template.pk), headers={"Accept-Language": "fr"}).content.decode()
    for words in ("Rédaction et aperçu en direct", "Ajouter une ligne", "Envoyer un test du brouillon",
                  "Aperçu, différences, actions", "Différences"):
        assert words in page, words
    refused = client.post(url("change", template.pk), editor_form(template, required_variables=["month", "x y"]),
                          headers={"Accept-Language": "fr"})
    assert "Ligne 2 : 'x y' n’est pas un nom de variable" in " ".join(errors_of(refused)["required_variables"])


# --- the editor's layout, lines, text part and budget (issue 19, "The editor") -------------------------


def test_the_wording_comes_first_and_the_settings_are_folded_below_it(editor, template):
    page = editor.get(url("change", template.pk)).content.decode()
    wording, settings_ = page.index('id="template-editor"'), page.index('id="template-settings"')
    assert wording < settings_ < page.index('name="required_variables"')
    assert re.search(r'<details class="template-settings" id="template-settings">', page)  # closed
    # A setting at fault opens them, so the error is seen; a new template starts with them open.
    refused = editor.post(url("change", template.pk), editor_form(template, required_variables=["month", "x y"]))
    assert '<details class="template-settings" id="template-settings" open>' in refused.content.decode()
    new = editor.get(reverse("admin:notifications_emailtemplate_add")).content.decode()
    assert '<details class="template-settings" id="template-settings" open>' in new


def test_a_refused_line_is_marked_for_the_editor_to_highlight(editor, template):
    old = active(template)
    broken = old.html_content.replace("<p>Merci pour votre confiance!</p>", "<p>{% if %}</p>")
    line = broken.splitlines().index("<p>{% if %}</p>") + 1
    response = editor.post(url("change", template.pk), editor_form(template, wording={"fr": {"html_content": broken}}))
    assert response.status_code == 200
    textarea = re.search(r'<textarea[^>]*name="version_fr_html_content"[^>]*>', response.content.decode()).group(0)
    assert f'data-error-line="{line}"' in textarea
    assert f"line {line}" in " ".join(errors_of(response)["version_fr_html_content"])


def test_a_save_over_the_render_budget_is_one_sentence_with_the_detail_folded(editor, template):
    old = active(template)
    loops = "{% for i in range(99999) %}{% for j in range(99999) %}x{% endfor %}{% endfor %}"
    response = editor.post(url("change", template.pk), editor_form(
        template, wording={"fr": {"html_content": old.html_content + loops}}))
    assert response.status_code == 200
    [message] = errors_of(response)["__all__"]  # the whole render: no one part to name
    assert message == ("[fr]: This template does too much work to render (loops or macros that repeat too often): "
                       "simplify it.")
    page = html.unescape(response.content.decode())
    detail = page.split('<details class="error-detail">')[1].split("</details>")[0]
    assert "Detail for the administrator" in detail and "TEMPLATE_RENDER_MAX_OPERATIONS" in detail
    assert template.versions.count() == 1


@pytest.mark.parametrize("text, warned", [("same", True), ("changed", False), ("empty", False)])
def test_a_save_that_changes_the_html_and_not_the_text_is_warned(editor, template, text, warned):
    old = active(template)
    wording = {"html_content": old.html_content.replace("Merci pour votre confiance!", "Merci !")}
    if text == "changed":
        wording["text_content"] = old.text_content.replace("Merci pour votre confiance!", "Merci !")
    elif text == "empty":  # "use the text generated from the HTML"
        wording["text_content"] = ""
    body = {**editor_form(template, wording={"fr": wording}), "_continue": "1"}
    response = editor.post(url("change", template.pk), body, follow=True)
    page = html.unescape(response.content.decode())
    assert ("The HTML of billing_invoice_monthly [fr] v2 changed and its text did not" in page) is warned
    assert active(template).version == 2
    assert "Use the text generated from the HTML" in page
