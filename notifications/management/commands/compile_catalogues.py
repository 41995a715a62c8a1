"""Compile the translation catalogues (`locale/<lang>/LC_MESSAGES/django.po`) into the `.mo`
files Django reads, with polib: no GNU gettext needed, so a fresh machine can rebuild them.

The `.mo` files are committed; `--check` (and the test suite) fails when one no longer
matches its `.po`. After marking new strings: `python manage.py makemessages -l fr -l en
--extension py --no-location --ignore 'notifications/tests/*' --ignore 'bench/*' --ignore '.venv/*'`,
translate them in the French `.po`, then run this command.
"""
from __future__ import annotations

from pathlib import Path

import polib
from django.conf import settings
from django.core.management.base import CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from notifications.management.commands._translated import TranslatedCommand


def catalogues() -> list[Path]:
    """Every `django.po` under `LOCALE_PATHS`."""
    return sorted(po for root in settings.LOCALE_PATHS for po in Path(root).glob("*/LC_MESSAGES/django.po"))


def compiled(po_path: Path) -> bytes:
    """The `.mo` bytes of a `.po` file (fuzzy and obsolete entries left out, as msgfmt does)."""
    catalogue = polib.pofile(str(po_path))
    for entry in catalogue.fuzzy_entries():
        catalogue.remove(entry)
    return catalogue.to_binary()


class Command(TranslatedCommand):
    help = gettext_lazy("Compile locale/*/LC_MESSAGES/django.po into the .mo files (with --check: only say which differ).")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--check", action="store_true", help=_("Change nothing; fail if a .mo is out of date."))

    def handle(self, *args, check: bool = False, **options) -> None:
        stale = []
        for po_path in catalogues():
            mo_path = po_path.with_suffix(".mo")
            data = compiled(po_path)
            if mo_path.exists() and mo_path.read_bytes() == data:
                continue
            stale.append(mo_path)
            if not check:
                mo_path.write_bytes(data)
                self.stdout.write(_("Compiled %(path)s") % {"path": mo_path})
        if check and stale:
            raise CommandError(_("Out of date, run `manage.py compile_catalogues`: %(paths)s")
                               % {"paths": ", ".join(map(str, stale))})
