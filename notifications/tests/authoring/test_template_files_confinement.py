"""`import_templates` reads only real files inside its folder, each within a size cap (issue 16, finding 5).

A symlinked `body.txt`, or a whole language folder pointing elsewhere, once became a template
version holding the target's content; a 100 MB `body.html` was read whole before the render
budget refused it. Each case runs the command as an operator does.
"""
from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from notifications.models import EmailTemplate, EmailTemplateVersion

pytestmark = pytest.mark.django_db

SECRET = "DATABASE_PASSWORD=hunter2\n"


@pytest.fixture
def exported(default_templates, tmp_path) -> Path:
    call_command("export_templates", str(tmp_path / "repo"), stdout=io.StringIO())
    return tmp_path / "repo"


@pytest.fixture
def outside(tmp_path) -> Path:
    """A folder beside the import folder, holding what an attacker wants read."""
    folder = tmp_path / "elsewhere"
    (folder / "fr").mkdir(parents=True)
    for name in ("subject.txt", "body.html", "body.txt"):
        (folder / "fr" / name).write_text(SECRET, encoding="utf-8")
    (folder / "secret.env").write_text(SECRET, encoding="utf-8")
    return folder


def refused(directory: Path) -> str:
    versions = EmailTemplateVersion.objects.count()
    with pytest.raises(CommandError) as info:
        call_command("import_templates", str(directory), stdout=io.StringIO())
    assert EmailTemplateVersion.objects.count() == versions  # nothing written
    assert not EmailTemplateVersion.objects.filter(html_content__contains="hunter2").exists()
    return str(info.value)


def test_a_symlinked_file_is_refused_naming_it(exported, outside):
    body = exported / "billing_invoice_monthly" / "fr" / "body.txt"
    body.unlink()
    body.symlink_to(outside / "secret.env")
    message = refused(exported)
    assert message.startswith(f"{body}: a symbolic link"), message


def test_a_symlinked_template_json_is_refused(exported, outside):
    fields = exported / "rma_confirmation" / "template.json"
    (outside / "template.json").write_bytes(fields.read_bytes())
    fields.unlink()
    fields.symlink_to(outside / "template.json")
    assert refused(exported).startswith(f"{fields}: a symbolic link")


def test_a_symlinked_language_folder_is_refused(exported, outside):
    language = exported / "billing_invoice_monthly" / "fr"
    for entry in language.iterdir():
        entry.unlink()
    language.rmdir()
    language.symlink_to(outside / "fr", target_is_directory=True)
    message = refused(exported)
    assert message.startswith(f"{language}: a symbolic link"), message


def test_a_symlinked_template_folder_is_refused(exported, outside, tmp_path):
    (outside / "template.json").write_bytes((exported / "rma_confirmation" / "template.json").read_bytes())
    link = exported / "rma_confirmation_copy"
    link.symlink_to(exported / "rma_confirmation", target_is_directory=True)
    assert refused(exported).startswith(f"{link}: a symbolic link")


def test_the_folder_named_may_itself_be_a_link(exported, tmp_path):
    """A deployment's `current -> releases/42` is the operator's choice, not the files'."""
    current = tmp_path / "current"
    current.symlink_to(exported, target_is_directory=True)
    out = io.StringIO()
    call_command("import_templates", str(current), stdout=out)
    assert "0 created, 0 updated" in out.getvalue()


def test_a_file_over_the_cap_is_refused_before_it_is_rendered(exported, settings):
    settings.TEMPLATE_FILE_MAX_BYTES = 4096
    body = exported / "billing_invoice_monthly" / "fr" / "body.html"
    # Rendered, this would be refused for its undeclared variable: the size refusal comes first.
    body.write_text("{{ not_declared }}" + "x" * 5000, encoding="utf-8")
    message = refused(exported)
    assert message == (f"{body}: larger than the 4,096 bytes a template file may hold "
                       "(TEMPLATE_FILE_MAX_BYTES)."), message


def test_a_100_mb_body_is_refused_without_being_read(exported):
    body = exported / "billing_invoice_monthly" / "fr" / "body.html"
    with body.open("r+b") as file:
        file.truncate(100 * 1024 * 1024)  # sparse: 100 MB to stat, nothing on disk
    started = time.monotonic()
    message = refused(exported)
    assert time.monotonic() - started < 5
    assert message.startswith(f"{body}: larger than the 2,097,152 bytes"), message


def test_a_file_that_is_not_a_regular_file_is_refused_without_blocking(exported):
    body = exported / "billing_invoice_monthly" / "fr" / "body.txt"
    body.unlink()
    os.mkfifo(body)  # reading a FIFO with no writer would wait forever
    assert refused(exported) == f"{body}: not a regular file."


def test_a_file_at_the_cap_is_still_imported(exported, settings):
    body = exported / "billing_invoice_monthly" / "fr" / "body.txt"
    text = body.read_text(encoding="utf-8")
    body.write_text(text + "Merci !\n", encoding="utf-8")
    # The largest file sits exactly at the cap.
    settings.TEMPLATE_FILE_MAX_BYTES = max(path.stat().st_size for path in exported.rglob("*") if path.is_file())
    call_command("import_templates", str(exported), stdout=io.StringIO())
    template = EmailTemplate.objects.get(key="billing_invoice_monthly")
    assert template.versions.get(is_active=True, language="fr").text_content.rstrip().endswith("Merci !")
