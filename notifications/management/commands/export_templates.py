"""Write the email templates as folders, in the layout `load_default_templates` and `import_templates` read.

Each template becomes `DIR/<key>/template.json` and, for the active version of each
language, `DIR/<key>/<language>/subject.txt`, `preheader.txt`, `body.html`, `body.txt`.
DIR defaults to `EMAIL_TEMPLATES_DIR` (beside its `layouts/`, which is never written into).
A DIR that exists is fine: the files the export writes are overwritten, and it says so;
nothing else is touched.
"""
from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from notifications.exceptions import TemplateFileError
from notifications.authoring.sync import export_templates
from notifications.management.commands._translated import TranslatedCommand


class Command(TranslatedCommand):
    help = gettext_lazy(
        "Write the email templates (every field, and the active version of each language) as folders "
        "under DIR, by default EMAIL_TEMPLATES_DIR."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("directory", nargs="?", default=None, metavar="DIR",
                            help=_("Where to write the template folders (default: EMAIL_TEMPLATES_DIR)."))
        parser.add_argument("--key", action="append", default=[], dest="keys", metavar="KEY",
                            help=_("Only this template (repeatable)."))

    def handle(self, *args, directory: str | None, keys: list[str], **options) -> None:
        target = Path(directory) if directory else Path(settings.EMAIL_TEMPLATES_DIR)
        if target.exists() and not target.is_dir():
            raise CommandError(_("%(path)s: not a folder.") % {"path": target})
        try:
            report = export_templates(directory=target, keys=keys or None)
        except TemplateFileError as exc:
            raise CommandError(exc.message) from None
        if options.get("verbosity", 1) < 1:
            return
        for path in report.replaced:
            self.stdout.write(_("  overwritten: %(path)s") % {"path": path})
        if options.get("verbosity", 1) > 1:
            for path in report.created:
                self.stdout.write(f"  + {path}")
        self.stdout.write(
            _("Exported %(templates)s templates to %(path)s: %(created)s files created, %(replaced)s overwritten, "
              "%(unchanged)s unchanged.")
            % {"templates": len(report.templates), "path": target, "created": len(report.created),
               "replaced": len(report.replaced), "unchanged": len(report.unchanged)}
        )
