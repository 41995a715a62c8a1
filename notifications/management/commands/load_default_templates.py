"""Load the default email templates from folders, without ever overwriting an edit.

Each folder under the source directory is one template, in the layout
`notifications.authoring.files` reads (the one `export_templates` writes):
`template.json` (its fields) and one sub-folder per language holding `subject.txt`,
optional `preheader.txt`, `body.html` and optional `body.txt`. A template whose key
already exists is left alone, so running this on every `make run` is safe.
"""
from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from notifications.exceptions import NotificationError, TemplateFileError
from notifications.models import EmailTemplate
from notifications.authoring.files import read_template_folder
from notifications.authoring.versions import create_template
from notifications.management.commands._translated import TranslatedCommand


class Command(TranslatedCommand):
    help = gettext_lazy("Create the default email templates that do not exist yet (never overwrites an edit).")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--dir", default=str(settings.EMAIL_DEFAULT_TEMPLATES_DIR), help=_("Source folder."))

    def handle(self, *args, dir: str, **options) -> None:
        source = Path(dir)
        if not source.is_dir():
            raise CommandError(_("No template folder at %(path)s.") % {"path": source})
        created, kept = [], []
        for folder in sorted(p for p in source.iterdir() if (p / "template.json").exists()):
            try:
                files = read_template_folder(folder)
            except TemplateFileError as exc:
                raise CommandError(exc.message) from None
            if EmailTemplate.objects.filter(key=files.key).exists():
                kept.append(files.key)
                continue
            versions = {language: content.as_dict() for language, content in files.versions.items()}
            try:
                create_template(versions=versions, **files.fields)
            except NotificationError as exc:
                raise CommandError(f"{folder.name}: {exc.message}") from None
            created.append(files.key)
        if options.get("verbosity", 1) < 1:
            return
        self.stdout.write(
            _("Email templates: %(created)s created, %(kept)s already present (kept as edited).")
            % {"created": len(created), "kept": len(kept)}
        )
        for key in created:
            self.stdout.write(f"  + {key}")
