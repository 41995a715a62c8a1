"""Create an API key for a user and print it once; only its digest is stored.

With `--create-user` it also makes the user, a service account: no usable password and not
staff, so it can act only through its keys and never log in to the admin. Without it an
unknown name is refused, so a typo never makes a user. `--group` (repeatable) puts the user
in existing groups (Senders, Template editors, ...); an unknown group is refused by name
before anything is written.
"""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from notifications.exceptions import NotificationError
from notifications.models import APIKey
from notifications.access import staff
from notifications.management.commands._translated import TranslatedCommand


class Command(TranslatedCommand):
    help = gettext_lazy(
        "Create an API key acting with <username>'s permissions. The key is printed once. "
        "--create-user makes the user first, as a service account that cannot log in to the admin."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="", help=_("A label to recognise the key by."))
        parser.add_argument("--test", action="store_true", help=_("A test key: renders and audits, never delivers."))
        parser.add_argument(
            "--create-user", action="store_true",
            help=_("Create the user when it does not exist: a service account that cannot log in to the admin."),
        )
        parser.add_argument(
            "--group", action="append", default=[], dest="groups", metavar="GROUP",
            help=_("Add the user to this group (repeatable), e.g. Senders."),
        )

    def handle(self, *args, username: str, name: str, test: bool, create_user: bool, groups: list[str], **options) -> None:
        wanted = self._groups(groups)
        with transaction.atomic():
            user, created = self._user(username, create=create_user)
            if wanted:
                user.groups.add(*wanted)
            _key, raw = APIKey.generate(user=user, name=name, is_test=test)
        if created:
            self.stderr.write(_("Created the service account %(user)s (no password: it cannot log in to the admin).")
                              % {"user": username})
        for group in wanted:
            self.stderr.write(_("%(user)s is in the group %(group)s.") % {"user": username, "group": group.name})
        self.stdout.write(raw)
        said = _("Test key for %(user)s: shown once, store it now.") if test else _(
            "Key for %(user)s: shown once, store it now.")
        self.stderr.write(said % {"user": username})

    @staticmethod
    def _groups(names: list[str]) -> list[Group]:
        """Every named group, or a refusal naming those that do not exist (nothing written)."""
        try:
            return staff.groups_named(names)
        except NotificationError as exc:
            raise CommandError(exc.message) from None

    @staticmethod
    def _user(username: str, *, create: bool):
        User = get_user_model()
        try:
            user = User.objects.get(username=username)
        except User.DoesNotExist:
            if not create:
                raise CommandError(
                    _("No user named %(user)r; add --create-user to create it as a service account.")
                    % {"user": username}
                ) from None
            user = User(username=username, is_staff=False, is_superuser=False)
            user.set_unusable_password()
            try:
                user.full_clean(exclude=["password"])
            except ValidationError as error:
                raise CommandError("; ".join(error.messages)) from None
            user.save()
            return user, True
        if not user.is_active:
            raise CommandError(_("User %(user)r is inactive; their keys would not work.") % {"user": username})
        return user, False
