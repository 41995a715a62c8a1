"""List and lift the failed-authentication lockouts (`notifications.access.lockout`).

    manage.py unlock --list                          what is locked now, and for how long
    manage.py unlock --username admin                every lockout of that username's login
    manage.py unlock --ip 203.0.113.7                every lockout of that address (login, API, webhooks)
    manage.py unlock --username admin --ip 203.0.113.7
    manage.py unlock --all

A lockout ends by itself after `AUTH_LOCKOUT_WINDOW_SECONDS`; this is for staff who know the
failures were their own (a deploy with a stale key, a colleague's typos).
"""
from __future__ import annotations

from django.core.management.base import CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from notifications.access import lockout
from notifications.management.commands._translated import TranslatedCommand


class Command(TranslatedCommand):
    help = gettext_lazy("List or lift the lockouts that failed logins, API keys and webhook passwords caused.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--list", action="store_true", help=_("List the lockouts in force; change nothing."))
        parser.add_argument("--username", default=None, help=_("Lift the admin login lockouts of this username."))
        parser.add_argument("--ip", default=None, help=_("Lift the lockouts of this client address."))
        parser.add_argument("--all", action="store_true", help=_("Lift every lockout."))

    def handle(self, *args, list: bool, username: str | None, ip: str | None, all: bool, **options) -> None:  # noqa: A002
        if list:
            self._list()
            return
        if not (all or username or ip):
            raise CommandError(_("Say what to lift: --username, --ip (or both), or --all; --list shows them."))
        lifted = 0
        for entry in lockout.current_lockouts():
            if all or ((username is None or (entry.scope == lockout.LOGIN and
                                             entry.username.casefold() == username.casefold()))
                       and (ip is None or entry.ip == ip)):
                lifted += lockout.lift(scope=entry.scope, ip=entry.ip, username=entry.username)
        if ip is not None:  # also those the index may have lost (an evicted cache entry)
            lifted += lockout.lift(scope=lockout.LOGIN, ip=ip, username=username or "") if username else 0
            lifted += sum(lockout.lift(scope=scope, ip=ip) for scope in (lockout.API, lockout.WEBHOOK)
                          if username is None)
        self.stdout.write(_("%(count)s lockouts lifted.") % {"count": lifted})

    def _list(self) -> None:
        entries = lockout.current_lockouts()
        for entry in entries:
            who = f"{entry.username} @ {entry.ip}" if entry.scope == lockout.LOGIN else entry.ip
            self.stdout.write(_("%(scope)s: %(who)s, %(seconds)s s left")
                              % {"scope": entry.scope, "who": who, "seconds": entry.seconds_left})
        if not entries:
            self.stdout.write(_("No lockout in force."))
