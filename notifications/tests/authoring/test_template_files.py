"""Templates as files: `export_templates`, `import_templates` and `--check` over the folder layout.

The acceptance of issue 12, part 5: an export then an import of all default templates
changes nothing; one edited file imported adds exactly one version; `--check` tells the
two apart. `fixtures/email_templates/` is itself an export, byte for byte.
"""
from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from notifications.models import EmailTemplate, EmailTemplateVersion
from notifications.authoring.files import TEMPLATE_FIELDS, read_template_folder
from notifications.authoring.versions import create_template_version

pytestmark = pytest.mark.django_db

FIXTURES = Path(settings.EMAIL_DEFAULT_TEMPLATES_DIR)
KEYS = sorted(path.parent.name for path in FIXTURES.glob("*/template.json"))
EDITED = "<p>Merci pour votre confiance, et à bientôt !</p>\n"


def files_of(root: Path) -> dict[str, bytes]:
    """Relative path → bytes of every file under `root`."""
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def refused(*args: str) -> str:
    """What the command printed, then the message of the `CommandError` it ends with (exit status 1)."""
    out = io.StringIO()
    with pytest.raises(CommandError) as info:
        call_command(*args, stdout=out)
    assert info.value.returncode == 1
    return out.getvalue() + str(info.value)


def database_state() -> tuple:
    """Everything an import may change: template fields and every version row."""
    templates = [(t.key, t.updated_at, {name: getattr(t, name) for name in TEMPLATE_FIELDS})
                 for t in EmailTemplate.objects.order_by("key")]
    versions = list(EmailTemplateVersion.objects.order_by("template__key", "language", "version").values_list(
        "template__key", "language", "version", "is_active", "subject", "html_content"))
    return templates, versions


@pytest.fixture
def exported(default_templates, tmp_path) -> Path:
    """An export of the loaded default templates."""
    run("export_templates", str(tmp_path / "repo"))
    return tmp_path / "repo"


# --- The acceptance -----------------------------------------------------------------------


def test_an_export_of_the_default_templates_is_the_fixture_folder_byte_for_byte(exported):
    assert files_of(exported) == files_of(FIXTURES)
    assert sorted(p.name for p in exported.iterdir()) == KEYS


def test_export_then_import_changes_nothing_and_check_agrees(exported):
    before = database_state()

    said = run("import_templates", str(exported))

    assert database_state() == before
    for key in KEYS:
        assert f"  {key}: unchanged\n" in said
    assert f"0 created, 0 updated, {len(KEYS)} unchanged; 0 versions added." in said
    assert "agree" in run("import_templates", str(exported), "--check")
    assert "agree" in run("import_templates", str(FIXTURES), "--check")
    assert run("import_templates", str(exported), "--check", "--verbosity", "0") == ""


def test_one_edited_file_fails_the_check_then_adds_exactly_one_active_version(exported):
    body = exported / "billing_invoice_monthly" / "fr" / "body.html"
    body.write_text(body.read_text(encoding="utf-8") + EDITED, encoding="utf-8")
    template = EmailTemplate.objects.get(key="billing_invoice_monthly")
    versions_before = EmailTemplateVersion.objects.count()

    out = io.StringIO()
    with pytest.raises(CommandError, match="1 of 9 templates differ") as info:
        call_command("import_templates", str(exported), "--check", stdout=out)
    assert info.value.returncode == 1
    assert "  billing_invoice_monthly: fr: changed since the active version 1: body.html\n" in out.getvalue()
    assert "  rma_confirmation: unchanged\n" in out.getvalue()
    assert EmailTemplateVersion.objects.count() == versions_before

    said = run("import_templates", str(exported))

    assert "  billing_invoice_monthly: fr: version 2 added (active)\n" in said
    assert "0 created, 1 updated, 8 unchanged; 1 versions added." in said
    assert EmailTemplateVersion.objects.count() == versions_before + 1
    active = template.versions.get(is_active=True)
    assert (active.version, active.html_content) == (2, body.read_text(encoding="utf-8"))
    assert active.html_content.endswith(EDITED)
    assert "agree" in run("import_templates", str(exported), "--check")
    assert run("import_templates", str(exported)).count("unchanged\n") == 9


def test_a_dry_run_says_what_the_import_would_do_and_writes_nothing(exported):
    body = exported / "billing_invoice_monthly" / "fr" / "body.html"
    body.write_text(body.read_text(encoding="utf-8") + EDITED, encoding="utf-8")
    before = database_state()

    said = run("import_templates", str(exported), "--dry-run")

    assert "  billing_invoice_monthly: fr: version 2 added (active)\n" in said
    assert said.endswith("Dry run: nothing was written.\n")
    assert database_state() == before


def test_no_activate_adds_the_version_inactive_once_and_the_check_still_differs(exported):
    body = exported / "billing_invoice_monthly" / "fr" / "body.html"
    body.write_text(body.read_text(encoding="utf-8") + EDITED, encoding="utf-8")
    template = EmailTemplate.objects.get(key="billing_invoice_monthly")

    said = run("import_templates", str(exported), "--no-activate")

    assert "  billing_invoice_monthly: fr: version 2 added (inactive)\n" in said
    assert list(template.versions.order_by("version").values_list("version", "is_active")) == [(1, True), (2, False)]
    assert template.versions.get(version=2).html_content.endswith(EDITED)
    # The database's active version still differs from the files; the new one is waiting.
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("import_templates", str(exported), "--check", stdout=out)
    assert "fr: the inactive version 2 holds these files" in out.getvalue()
    # Again with --no-activate: no second copy.
    again = run("import_templates", str(exported), "--no-activate")
    assert "  billing_invoice_monthly: unchanged; fr: the inactive version 2 holds these files\n" in again
    assert template.versions.count() == 2
    # Without it: the files go live, as the next number.
    assert "fr: version 3 added (active)" in run("import_templates", str(exported))
    assert template.versions.get(is_active=True).version == 3


def test_create_template_version_can_add_an_inactive_version(default_templates):
    template = EmailTemplate.objects.get(key="support_ticket_created")
    active = template.versions.get(is_active=True)
    version = create_template_version(
        template=template, language="fr", activate=False,
        subject=active.subject, html_content=active.html_content + "<p>Nouveau</p>\n",
    )
    assert (version.version, version.is_active) == (active.version + 1, False)
    assert template.versions.get(is_active=True) == active


# --- Fields, new templates, what is left alone ---------------------------------------------


def edit_json(folder: Path, **changes) -> None:
    path = folder / "template.json"
    fields = json.loads(path.read_text(encoding="utf-8"))
    fields.update(changes)
    path.write_text(json.dumps(fields, ensure_ascii=False), encoding="utf-8")


def test_a_field_changed_in_template_json_updates_the_field_and_adds_no_version(exported):
    edit_json(exported / "cutover_reminder", name="Rappel de cutover", lane="urgent", max_attempts=4)
    versions_before = EmailTemplateVersion.objects.count()

    assert "cutover_reminder: fields differ: name, lane, max_attempts" in refused(
        "import_templates", str(exported), "--check") + run("import_templates", str(exported), "--dry-run")
    said = run("import_templates", str(exported))

    assert "  cutover_reminder: fields updated: name, lane, max_attempts\n" in said
    template = EmailTemplate.objects.get(key="cutover_reminder")
    assert (template.name, template.lane, template.max_attempts) == ("Rappel de cutover", "urgent", 4)
    assert EmailTemplateVersion.objects.count() == versions_before


def test_the_order_of_a_json_object_and_crlf_line_endings_are_no_difference(exported):
    folder = exported / "billing_invoice_monthly"
    fields = json.loads((folder / "template.json").read_text(encoding="utf-8"))
    fields["sample_variables"] = dict(reversed(list(fields["sample_variables"].items())))
    (folder / "template.json").write_text(json.dumps(fields, indent=4), encoding="utf-8")
    body = folder / "fr" / "body.html"
    body.write_bytes(body.read_bytes().replace(b"\n", b"\r\n"))
    (folder / "fr" / "subject.txt").write_text("  " + (folder / "fr" / "subject.txt").read_text() + "\n\n")

    assert "agree" in run("import_templates", str(exported), "--check")


def test_a_new_folder_creates_the_template_with_active_versions(exported):
    folder = exported / "billing_invoice_quarterly"
    shutil.copytree(exported / "billing_invoice_monthly", folder)
    edit_json(folder, key="billing_invoice_quarterly", name="Facture trimestrielle")
    user = get_user_model().objects.create_user(username="templates-ci")

    assert "billing_invoice_quarterly: to create, in fr" in refused("import_templates", str(exported), "--check")
    said = run("import_templates", str(exported), "--user", "templates-ci")

    assert "  billing_invoice_quarterly: created; fr: version 1 added (active)\n" in said
    assert "1 created, 0 updated, 9 unchanged; 1 versions added." in said
    template = EmailTemplate.objects.get(key="billing_invoice_quarterly")
    assert (template.name, template.created_by, template.updated_by) == ("Facture trimestrielle", user, user)
    version = template.versions.get()
    assert (version.version, version.is_active, version.created_by) == (1, True, user)
    assert version.html_content == (folder / "fr" / "body.html").read_text(encoding="utf-8")
    # And it exports back to the same files.
    run("export_templates", str(exported.parent / "again"), "--key", "billing_invoice_quarterly")
    again = files_of(exported.parent / "again" / "billing_invoice_quarterly")
    assert json.loads(again.pop("template.json")) == json.loads((folder / "template.json").read_text(encoding="utf-8"))
    assert again == {name: data for name, data in files_of(folder).items() if name != "template.json"}


def test_an_unknown_user_is_refused_before_anything_is_read(exported):
    assert "No user named 'nobody'" in refused("import_templates", str(exported), "--user", "nobody")


def test_templates_only_in_the_database_are_left_alone_and_listed(exported):
    shutil.rmtree(exported / "rma_confirmation")
    said = run("import_templates", str(exported))
    assert "Only in the database (left as they are): rma_confirmation" in said
    assert EmailTemplate.objects.filter(key="rma_confirmation").exists()
    assert "agree" in run("import_templates", str(exported), "--check")


def test_key_limits_an_import_and_an_export(exported, tmp_path):
    (exported / "rma_confirmation" / "fr" / "subject.txt").write_text("Autre sujet {{ rma_number }}\n")
    assert "agree" in run("import_templates", str(exported), "--check", "--key", "billing_invoice_monthly")
    assert "no folder for the templates nope" in refused("import_templates", str(exported), "--key", "nope")

    said = run("export_templates", str(tmp_path / "one"), "--key", "rma_confirmation")
    assert "Exported 1 templates" in said
    assert [p.name for p in (tmp_path / "one").iterdir()] == ["rma_confirmation"]
    assert "No email template with key 'nope'" in refused("export_templates", str(tmp_path / "x"), "--key", "nope")


def test_an_export_over_an_earlier_one_says_what_it_overwrote(exported):
    subject = exported / "rma_confirmation" / "fr" / "subject.txt"
    subject.write_text("edited by hand\n", encoding="utf-8")
    said = run("export_templates", str(exported))
    assert f"overwritten: {subject}" in said
    assert "0 files created, 1 overwritten, 44 unchanged." in said
    assert files_of(exported) == files_of(FIXTURES)


def test_an_export_that_cannot_write_names_the_path(default_templates, tmp_path):
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "rma_confirmation").write_text("a file where the folder goes", encoding="utf-8")
    message = refused("export_templates", str(tmp_path / "repo"))
    assert f"{tmp_path}/repo/rma_confirmation" in message and "cannot be written" in message
    assert "Traceback" not in message


def test_the_default_folder_is_email_templates_dir_and_layouts_are_not_templates(default_templates, tmp_path, settings):
    settings.EMAIL_TEMPLATES_DIR = tmp_path
    (tmp_path / "layouts").mkdir()
    (tmp_path / "layouts" / "default.html").write_text("<html>{{ content }}</html>", encoding="utf-8")

    run("export_templates")

    assert (tmp_path / "layouts" / "default.html").read_text(encoding="utf-8") == "<html>{{ content }}</html>"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*KEYS, "layouts"])
    assert "agree" in run("import_templates", "--check")
    assert "0 versions added" in run("import_templates")


# --- Refusals: the file and the problem named, nothing written ------------------------------


def write(path: Path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")


BAD_FILES = {
    "bad_json": (lambda d: write(d / "rma_confirmation/template.json", '{"key": "rma_confirmation",'),
                 "rma_confirmation/template.json: not valid JSON (line 1"),
    "not_an_object": (lambda d: write(d / "rma_confirmation/template.json", "[]"),
                      "rma_confirmation/template.json: a JSON object of the template's fields is expected"),
    "unknown_field": (lambda d: edit_json(d / "rma_confirmation", colour="red", font="Arial"),
                      "rma_confirmation/template.json: unknown fields colour, font"),
    "wrong_type": (lambda d: edit_json(d / "rma_confirmation", max_attempts="3"),
                   'rma_confirmation/template.json: max_attempts must be a JSON integer, not "3"'),
    "key_not_folder": (lambda d: edit_json(d / "rma_confirmation", key="rma"),
                       "rma_confirmation/template.json: key 'rma' is not the folder's name 'rma_confirmation'"),
    "no_template_json": (lambda d: (d / "rma_confirmation/template.json").unlink(),
                         "rma_confirmation: no template.json in this template folder"),
    "missing_subject": (lambda d: (d / "rma_confirmation/fr/subject.txt").unlink(),
                        "rma_confirmation/fr/subject.txt: missing (it is required)"),
    "missing_body": (lambda d: (d / "rma_confirmation/fr/body.html").unlink(),
                     "rma_confirmation/fr/body.html: missing (it is required)"),
    "unknown_language": (lambda d: shutil.copytree(d / "rma_confirmation/fr", d / "rma_confirmation/de"),
                         "rma_confirmation/de: unknown language 'de'; expected one of en, fr"),
    "unknown_file": (lambda d: write(d / "rma_confirmation/fr/body.htm", "<p>x</p>"),
                     "rma_confirmation/fr/body.htm: unknown file; a language folder holds subject.txt"),
    "stray_file": (lambda d: write(d / "rma_confirmation/notes.md", "x"),
                   "rma_confirmation/notes.md: unknown file; a template folder holds template.json"),
    "not_utf8": (lambda d: write(d / "rma_confirmation/fr/body.html", "<p>Reçu {{ rma_number }}</p>".encode("latin-1")),
                 "rma_confirmation/fr/body.html: not UTF-8 text (at byte offset 5)"),
    "nul_in_body": (lambda d: write(d / "rma_confirmation/fr/body.html", "<p>{{ rma_number }}\x00</p>"),
                    "rma_confirmation/fr/body.html: contains a NUL character (U+0000)"),
    "nul_in_field": (lambda d: edit_json(d / "rma_confirmation", name="RMA\x00"),
                     "rma_confirmation/template.json: name: "),
    "too_deep": (lambda d: write(d / "rma_confirmation/template.json", "[" * 100_000 + "]" * 100_000),
                 "rma_confirmation/template.json: nested deeper than"),
    "invalid_field": (lambda d: edit_json(d / "rma_confirmation", lane="express"),
                      "rma_confirmation/template.json: lane: "),
    "unknown_layout": (lambda d: edit_json(d / "rma_confirmation", layout="fancy"),
                       "rma_confirmation/template.json: layout: Layout 'fancy' does not exist"),
    "fields_break_the_kept_version": (
        lambda d: edit_json(d / "rma_confirmation", required_variables=[
            *json.loads((d / "rma_confirmation/template.json").read_text())["required_variables"], "po_number"]),
        "rma_confirmation/template.json: the active version 1 in fr does not pass with these fields: "),
    "undeclared_variable": (lambda d: write(d / "rma_confirmation/fr/body.html", "<p>{{ rma_number }} {{ oops }}</p>"),
                            "rma_confirmation/fr: "),
    "sandbox_escape": (
        lambda d: write(d / "rma_confirmation/fr/body.html",
                        (d / "rma_confirmation/fr/body.html").read_text() + "{{ rma_number.__class__ }}"),
        "rma_confirmation/fr"),
    "two_line_subject": (lambda d: write(d / "rma_confirmation/fr/subject.txt", "Ticket {{ rma_number }}\nx\n"),
                         "rma_confirmation/fr/subject.txt: "),
}


@pytest.mark.parametrize("case", BAD_FILES, ids=list(BAD_FILES))
def test_a_bad_file_is_refused_naming_it_and_nothing_is_written(exported, case):
    # A sound edit in a template imported before the bad one: rolled back with the rest.
    body = exported / "billing_invoice_monthly" / "fr" / "body.html"
    body.write_text(body.read_text(encoding="utf-8") + EDITED, encoding="utf-8")
    edit_json(exported / "account_creation_invitation", name="Invitation")
    spoil, expected = BAD_FILES[case]
    spoil(exported)
    before = database_state()

    message = refused("import_templates", str(exported))

    assert f"{exported}/{expected}" in message, message
    assert "Traceback" not in message
    assert database_state() == before
    assert EmailTemplate.objects.get(key="account_creation_invitation").name != "Invitation"


@pytest.mark.parametrize("case", ["bad_json", "unknown_field", "missing_body", "not_utf8", "invalid_field",
                                  "fields_break_the_kept_version", "undeclared_variable", "sandbox_escape"])
def test_check_names_a_bad_file_too(exported, case):
    spoil, expected = BAD_FILES[case]
    spoil(exported)
    assert f"{exported}/{expected}" in refused("import_templates", str(exported), "--check")


def test_a_missing_folder_is_named(tmp_path):
    assert f"{tmp_path / 'nowhere'}: no such folder" in refused("import_templates", str(tmp_path / "nowhere"))


def test_load_default_templates_reads_with_the_same_reader(tmp_path):
    shutil.copytree(FIXTURES / "rma_confirmation", tmp_path / "rma_confirmation")
    edit_json(tmp_path / "rma_confirmation", colour="red")
    message = str(pytest.raises(CommandError, call_command, "load_default_templates", dir=str(tmp_path),
                                verbosity=0).value)
    assert f"{tmp_path}/rma_confirmation/template.json: unknown fields colour" in message
    assert not EmailTemplate.objects.exists()


def test_the_reader_gives_the_fixture_folder_as_the_database_stores_it():
    files = read_template_folder(FIXTURES / "billing_invoice_monthly")
    assert files.key == "billing_invoice_monthly"
    assert files.fields["is_active"] is True and files.fields["attachments_allowed"] is True
    assert list(files.versions) == ["fr"]
    assert files.versions["fr"].subject == "Facture RGZ — {{ month }} {{ year }}"


# --- As a CI runs it -----------------------------------------------------------------------


def test_from_the_shell_check_exits_0_when_files_and_database_agree_and_1_when_not(tmp_path):
    """`manage.py import_templates --check` in a process of its own, on a database of its own."""
    import os
    import subprocess

    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "LANG": "C.UTF-8",
        "ENVIRONMENT": "development", "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "CELERY_BROKER_URL": "",
        "LANGUAGE_CODE": "en",
    }

    def manage(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(Path(settings.BASE_DIR) / ".venv/bin/python"), "manage.py", *args],
                              cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=300)

    for step in (["migrate", "--verbosity", "0"], ["load_default_templates", "--verbosity", "0"]):
        assert manage(*step).returncode == 0
    repo = tmp_path / "repo"
    assert manage("export_templates", str(repo)).returncode == 0

    agree = manage("import_templates", str(repo), "--check")
    assert (agree.returncode, agree.stderr) == (0, "")
    assert "agree (9 templates)" in agree.stdout

    body = repo / "onboarding_welcome" / "fr" / "body.html"
    body.write_text(body.read_text(encoding="utf-8") + EDITED, encoding="utf-8")
    differ = manage("import_templates", str(repo), "--check")
    assert differ.returncode == 1
    assert "onboarding_welcome: fr: changed since the active version 1: body.html" in differ.stdout
    assert "CommandError: 1 of 9 templates differ" in differ.stderr and "Traceback" not in differ.stderr

    imported = manage("import_templates", str(repo))
    assert imported.returncode == 0 and "onboarding_welcome: fr: version 2 added (active)" in imported.stdout
    assert manage("import_templates", str(repo), "--check").returncode == 0
