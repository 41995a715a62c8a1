"""People who use the admin: staff accounts and the links that let them set a password.

A password is never chosen for anyone, printed or logged: a staff account is made without a
usable password, and its owner sets one through a link made by Django's password-reset
token machinery (`default_token_generator`). The token is bound to the account's password
hash and last login, so it works once (setting the password changes the hash) and expires
after `PASSWORD_RESET_TIMEOUT`. The page it opens is `views.SetPasswordView`. Service
accounts, which act only through API keys, are `create_api_key`'s.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.translation import gettext as _

from notifications.exceptions import NotificationError


class StaffError(NotificationError):
    """A staff account that cannot be made or reached as asked; the message says what to fix."""

    code = "staff_error"


@dataclass(frozen=True)
class SetPasswordLink:
    """A link that sets `user`'s password once, until `expires_at`."""

    user: object
    url: str
    expires_at: datetime


def groups_named(names: Iterable[str]) -> list[Group]:
    """Every named group, in order, or a refusal naming those that do not exist."""
    names = list(dict.fromkeys(names))
    found = {group.name: group for group in Group.objects.filter(name__in=names)}
    unknown = [name for name in names if name not in found]
    if unknown:
        raise StaffError(
            _("No group named %(groups)s; the groups are: %(known)s.") % {
                "groups": ", ".join(repr(name) for name in unknown),
                "known": ", ".join(Group.objects.order_by("name").values_list("name", flat=True)) or "-",
            },
            field="group",
        )
    return [found[name] for name in names]


@transaction.atomic
def create_staff(*, email: str, groups: Iterable[str], username: str = "") -> tuple[object, bool]:
    """Make (or find) the staff account of `email`, in `groups`; returns (user, created).

    A new account is staff, not superuser, without a usable password (its owner sets one
    through `set_password_link`); an existing one keeps its password and is made staff and
    added to the groups, unless it is a service account (keys, no password). Nothing is
    written when a group is unknown, the address invalid or the account refused.
    """
    try:
        validate_email(email)
    except ValidationError:
        raise StaffError(_("%(email)r is not a valid email address.") % {"email": email}, field="email") from None
    wanted = groups_named(groups)
    if not wanted:
        raise StaffError(_("Give at least one --group: without one a staff account can do nothing."), field="group")
    User = get_user_model()
    username = username or email
    user = User.objects.filter(username=username).first()
    created = user is None
    if created:
        user = User(username=username, email=email, is_staff=True, is_superuser=False)
        user.set_unusable_password()
        try:
            user.full_clean(exclude=["password"])
        except ValidationError as error:
            raise StaffError("; ".join(error.messages), field="username") from None
        user.save()
    else:
        if not user.is_active:
            raise StaffError(_("User %(user)r is inactive.") % {"user": username}, field="username")
        if not user.is_staff and not user.has_usable_password() and user.api_keys.exists():
            # A service account (`create_api_key --create-user`) must never become able to log in.
            raise StaffError(
                _("%(user)r is a service account (API keys, no password); give the person another --username.")
                % {"user": username}, field="username",
            )
        if not user.is_staff:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
    user.groups.add(*wanted)
    return user, created


def set_password_link(*, user, base_url: str) -> SetPasswordLink:
    """A link to `base_url` (the site's address, e.g. `http://127.0.0.1:8000`) that sets
    `user`'s password once and expires after `PASSWORD_RESET_TIMEOUT`.

    Nothing is stored: the token is a signature of the account's current state.
    """
    from django.conf import settings

    if not user.is_active:
        raise StaffError(_("User %(user)r is inactive.") % {"user": user.get_username()}, field="username")
    path = reverse("staff-set-password", kwargs={
        "uidb64": urlsafe_base64_encode(force_bytes(user.pk)), "token": default_token_generator.make_token(user),
    })
    return SetPasswordLink(
        user=user, url=base_url.rstrip("/") + path,
        expires_at=timezone.now() + timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT),
    )


__all__ = ["SetPasswordLink", "StaffError", "create_staff", "groups_named", "set_password_link"]
