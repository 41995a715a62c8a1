"""Take email templates from folders (the layout `export_templates` writes), or check them.

For each `DIR/<key>/` folder: a template that does not exist is created; fields that differ
from `template.json` are updated; a language whose files differ from its active version
gets a new version (active, or inactive with `--no-activate`). Nothing else changes, and
nothing is ever deleted. One transaction per run: a file that is refused (named in the
error) leaves the database as it was.

`--check` writes nothing, prints what differs and fails (exit status 1) when an import
would change anything or refuse a file: the CI of a template repository runs it against
the service's database. `--dry-run` prints what an import would do (the import, rolled
back) and succeeds.
"""
from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from notifications.exceptions import TemplateFileError
from notifications.authoring.sync import (
    ImportPlan,
    TemplateOutcome,
    TemplatePlan,
    apply_import,
    plan_import,
    rehearse_import,
)

from notifications.management.commands._translated import TranslatedCommand


class Command(TranslatedCommand):
    help = gettext_lazy(
        "Create and update email templates from folders under DIR (default EMAIL_TEMPLATES_DIR), adding a "
        "version only where a language's files changed. --check fails when files and database differ."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("directory", nargs="?", default=None, metavar="DIR",
                            help=_("Where the template folders are (default: EMAIL_TEMPLATES_DIR)."))
        parser.add_argument("--key", action="append", default=[], dest="keys", metavar="KEY",
                            help=_("Only this template (repeatable)."))
        parser.add_argument("--no-activate", action="store_false", dest="activate",
                            help=_("Add new versions inactive: the active ones stay active."))
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--check", action="store_true",
                          help=_("Write nothing; fail when the files and the database differ."))
        mode.add_argument("--dry-run", action="store_true", help=_("Write nothing; say what an import would do."))
        parser.add_argument("--user", default=None, metavar="USERNAME",
                            help=_("Record this user as the author of the changes."))

    def handle(self, *args, directory: str | None, keys: list[str], activate: bool, check: bool, dry_run: bool,
               user: str | None, **options) -> None:
        source = Path(directory) if directory else Path(settings.EMAIL_TEMPLATES_DIR)
        author = self._user(user)
        self.quiet = options.get("verbosity", 1) < 1
        try:
            with transaction.atomic():  # the templates compared stay locked until written
                plan = plan_import(directory=source, keys=keys or None)
                if check:
                    self._show_plan(plan)
                    rehearse_import(plan=plan, activate=activate, user=author)
                elif dry_run:
                    outcomes = rehearse_import(plan=plan, activate=activate, user=author)
                else:
                    outcomes = apply_import(plan=plan, activate=activate, user=author)
        except TemplateFileError as exc:
            raise CommandError(exc.message) from None
        if check:
            self._conclude_check(plan, source)
            return
        self._show_outcomes(plan, outcomes)
        if dry_run and not self.quiet:
            self.stdout.write(_("Dry run: nothing was written."))

    def _conclude_check(self, plan: ImportPlan, source: Path) -> None:
        if plan.differs:
            changed = sum(1 for template in plan.templates if not template.unchanged)
            raise CommandError(
                _("%(changed)s of %(total)s templates differ between %(path)s and the database.")
                % {"changed": changed, "total": len(plan.templates), "path": source}
            )
        if not self.quiet:
            self.stdout.write(_("The files in %(path)s and the database agree (%(total)s templates).")
                              % {"path": source, "total": len(plan.templates)})

    @staticmethod
    def _user(username: str | None):
        if username is None:
            return None
        try:
            return get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist:
            raise CommandError(_("No user named %(user)s.") % {"user": repr(username)}) from None

    def _show_plan(self, plan: ImportPlan) -> None:
        if self.quiet:
            return
        for template in plan.templates:
            self.stdout.write(f"  {template.key}: {'; '.join(self._planned(template))}")
        self._show_only_in_database(plan)

    @staticmethod
    def _planned(template: TemplatePlan) -> list[str]:
        if template.unchanged:
            return [_("unchanged")]
        said = []
        if not template.exists:
            said.append(_("to create, in %(languages)s")
                        % {"languages": ", ".join(c.language for c in template.language_changes) or "-"})
            return said
        if template.field_changes:
            said.append(_("fields differ: %(names)s") % {"names": ", ".join(c.name for c in template.field_changes)})
        for change in template.language_changes:
            if change.active_version is None:
                said.append(_("%(language)s: no active version") % {"language": change.language})
            else:
                said.append(_("%(language)s: changed since the active version %(version)s: %(files)s")
                            % {"language": change.language, "files": ", ".join(change.files),
                               "version": change.active_version})
            if change.pending_version is not None:
                said.append(_("%(language)s: the inactive version %(version)s holds these files")
                            % {"language": change.language, "version": change.pending_version})
        return said

    def _show_outcomes(self, plan: ImportPlan, outcomes: list[TemplateOutcome]) -> None:
        if self.quiet:
            return
        counts = {"created": 0, "updated": 0, "unchanged": 0, "versions": 0}
        for outcome in outcomes:
            said = []
            if outcome.created:
                said.append(_("created"))
                counts["created"] += 1
            elif outcome.fields_updated or outcome.versions_added:
                counts["updated"] += 1
            else:
                said.append(_("unchanged"))
                counts["unchanged"] += 1
            if outcome.fields_updated:
                said.append(_("fields updated: %(names)s") % {"names": ", ".join(outcome.fields_updated)})
            for language, number, active in outcome.versions_added:
                said.append((_("%(language)s: version %(version)s added (active)") if active else
                             _("%(language)s: version %(version)s added (inactive)"))
                            % {"language": language, "version": number})
                counts["versions"] += 1
            for language, number in outcome.versions_pending:
                said.append(_("%(language)s: the inactive version %(version)s holds these files")
                            % {"language": language, "version": number})
            self.stdout.write(f"  {outcome.key}: {'; '.join(said)}")
        self._show_only_in_database(plan)
        self.stdout.write(
            _("Imported from %(path)s: %(created)s created, %(updated)s updated, %(unchanged)s unchanged; "
              "%(versions)s versions added.") % {"path": plan.directory, **counts}
        )

    def _show_only_in_database(self, plan: ImportPlan) -> None:
        if plan.only_in_database:
            self.stdout.write(_("  Only in the database (left as they are): %(keys)s")
                              % {"keys": ", ".join(plan.only_in_database)})
