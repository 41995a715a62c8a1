"""Create a first superuser with a random password, printed once, if there is none; or, with
`--reset`, print a link that sets a superuser's lost password.

`make run` calls it on every start: the first time it makes `admin` and prints its password
once (the only password this project ever prints); afterwards it says a superuser exists
and how to recover a lost password. `--reset` never prints a password: its link works once
and expires after `PASSWORD_RESET_TIMEOUT`, like `create_staff`'s (`access.staff`).
"""
from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from notifications.exceptions import NotificationError
from notifications.access import staff

from notifications.management.commands._links import add_base_url_argument, base_url
from notifications.management.commands.create_staff import expiry_note
from notifications.management.commands._translated import TranslatedCommand


class Command(TranslatedCommand):
    help = gettext_lazy(
        "Create the user 'admin' with a random password when no superuser exists; "
        "--reset prints a link that sets a superuser's lost password."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--username", default="admin")
        parser.add_argument("--email", default="admin@localhost")
        parser.add_argument(
            "--reset", action="store_true",
            help=_("Print a link that sets the password of the superuser --username (a lost password)."),
        )
        add_base_url_argument(parser)

    def handle(self, *args, username: str, email: str, reset: bool, **options) -> None:
        User = get_user_model()
        if reset:
            self._reset(User, username, base_url(options["base_url"]))
            return
        if User.objects.filter(is_superuser=True).exists():
            self.stdout.write(_(
                "A superuser exists already; none created. If its password is lost, "
                "python manage.py ensure_admin --reset [--username NAME] prints a link that sets a new one."
            ))
            return
        password = secrets.token_urlsafe(18)
        User.objects.create_superuser(username=username, email=email, password=password)
        self.stdout.write(self.style.WARNING(
            _("Created superuser %(user)r with password: %(password)s\n"
              "It is shown only this once; change it in the admin.") % {"user": username, "password": password}
        ))

    def _reset(self, User, username: str, url: str) -> None:
        user = User.objects.filter(username=username, is_superuser=True).first()
        if user is None:
            known = ", ".join(User.objects.filter(is_superuser=True).order_by("username")
                              .values_list("username", flat=True)) or "-"
            raise CommandError(_("No superuser named %(user)r; the superusers are: %(known)s.")
                               % {"user": username, "known": known})
        try:
            link = staff.set_password_link(user=user, base_url=url)
        except NotificationError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(link.url)
        self.stderr.write(expiry_note(link))
