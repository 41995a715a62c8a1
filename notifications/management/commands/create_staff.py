"""Give a person access to the admin: a staff account in the named groups, and a link that
lets them choose their password.

No password is ever chosen, printed or logged here: the account has none until its owner
follows the link, which works once and expires after `PASSWORD_RESET_TIMEOUT`
(`access.staff`). The link alone goes to stdout, so a script can mail it on; what was done
goes to stderr. On an existing account it adds the groups and prints a fresh link.
"""
from __future__ import annotations

from django.core.management.base import CommandError
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from notifications.exceptions import NotificationError
from notifications.access import staff

from notifications.management.commands._links import add_base_url_argument, base_url
from notifications.management.commands._translated import TranslatedCommand


class Command(TranslatedCommand):
    help = gettext_lazy(
        "Create a staff account (Template editors, Auditors, Administrators) and print a link that sets "
        "its password once; never a password."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("email", help=_("The person's email address; also their username unless --username."))
        parser.add_argument(
            "--group", action="append", default=[], dest="groups", metavar="GROUP", required=True,
            help=_("A group to put the account in (repeatable): Template editors, Auditors, Administrators."),
        )
        parser.add_argument("--username", default="", help=_("The username, when it is not the email address."))
        add_base_url_argument(parser)

    def handle(self, *args, email: str, groups: list[str], username: str, **options) -> None:
        url = base_url(options["base_url"])
        try:
            user, created = staff.create_staff(email=email, groups=groups, username=username)
            link = staff.set_password_link(user=user, base_url=url)
        except NotificationError as exc:
            raise CommandError(exc.message) from None
        said = _("Created the staff account %(user)s.") if created else _("%(user)s is a staff account already.")
        self.stderr.write(said % {"user": user.get_username()})
        for name in dict.fromkeys(groups):
            self.stderr.write(_("%(user)s is in the group %(group)s.") % {"user": user.get_username(), "group": name})
        self.stdout.write(link.url)
        self.stderr.write(expiry_note(link))


def expiry_note(link: staff.SetPasswordLink) -> str:
    return _(
        "Send this link to its owner: it sets the password once, and expires on %(when)s "
        "(PASSWORD_RESET_TIMEOUT)."
    ) % {"when": formats.date_format(timezone.localtime(link.expires_at), "DATETIME_FORMAT")}
