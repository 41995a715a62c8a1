"""Load the default email templates from folders, without ever overwriting an edit.

Each folder under the source directory is one template: `template.json` (its fields) and
one sub-folder per language holding `subject.txt`, optional `preheader.txt`, `body.html`
and optional `body.txt`. A template whose key already exists is left alone, so running
this on every `make run` is safe.
"""
from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from notifications.exceptions import NotificationError
from notifications.models import EmailTemplate
from notifications.services.templates import create_template

TEMPLATE_FIELDS = {
    "key", "name", "description", "category", "kind", "lane", "required_variables",
    "optional_variables", "sensitive_variables", "attachments_allowed", "max_attempts",
    "default_language", "extra_recipients", "sample_variables", "layout", "is_active",
}


def read_template_folder(folder: Path) -> tuple[dict, dict[str, dict[str, str]]]:
    """(template fields, {language: version parts}) from one template folder."""
    meta = json.loads((folder / "template.json").read_text(encoding="utf-8"))
    unknown = set(meta) - TEMPLATE_FIELDS
    if unknown:
        raise CommandError(
            _("%(file)s: unknown fields %(names)s.")
            % {"file": f"{folder}/template.json", "names": ", ".join(sorted(unknown))}
        )
    versions: dict[str, dict[str, str]] = {}
    for language_dir in sorted(p for p in folder.iterdir() if p.is_dir()):

        def read(name: str, language_dir: Path = language_dir) -> str:
            path = language_dir / name
            return path.read_text(encoding="utf-8") if path.exists() else ""

        versions[language_dir.name] = {
            "subject": read("subject.txt").strip(),
            "preheader": read("preheader.txt").strip(),
            "html_content": read("body.html"),
            "text_content": read("body.txt"),
        }
    return meta, versions


class Command(BaseCommand):
    help = "Create the default email templates that do not exist yet (never overwrites an edit)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--dir", default=str(settings.EMAIL_DEFAULT_TEMPLATES_DIR), help="Source folder.")

    def handle(self, *args, dir: str, **options) -> None:
        source = Path(dir)
        if not source.is_dir():
            raise CommandError(_("No template folder at %(path)s.") % {"path": source})
        created, kept = [], []
        for folder in sorted(p for p in source.iterdir() if (p / "template.json").exists()):
            meta, versions = read_template_folder(folder)
            if EmailTemplate.objects.filter(key=meta["key"]).exists():
                kept.append(meta["key"])
                continue
            try:
                create_template(versions=versions, **meta)
            except NotificationError as exc:
                raise CommandError(f"{folder.name}: {exc.message}") from None
            created.append(meta["key"])
        if options.get("verbosity", 1) < 1:
            return
        self.stdout.write(
            _("Email templates: %(created)s created, %(kept)s already present (kept as edited).")
            % {"created": len(created), "kept": len(kept)}
        )
        for key in created:
            self.stdout.write(f"  + {key}")
