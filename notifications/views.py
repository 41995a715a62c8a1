"""The site's own pages outside the admin and the API: the front page, the staff's set-password
link, and the admin's login behind the failed-login lockout."""
from __future__ import annotations

import math

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.views import PasswordResetCompleteView, PasswordResetConfirmView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.response import TemplateResponse
from django.urls import reverse, reverse_lazy
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from notifications.access import lockout


def home(request: HttpRequest) -> HttpResponse:
    """In development `/` is the admin, where the work is; elsewhere a page that links to it
    and to the API docs, so a deployment's root never shows a 404 or the admin's login first."""
    if settings.ENVIRONMENT == "development":
        return redirect("admin:index")
    return render(request, "site/home.html")


class SetPasswordView(PasswordResetConfirmView):
    """The page a staff link opens (`access.staff.set_password_link`): choose a password, once.

    Django's own password-reset confirmation, in the admin's look: the first request moves the
    token into the session and redirects to a URL without it, so it never reaches a Referer
    header or later requests' logs; a link whose password was set, or past
    `PASSWORD_RESET_TIMEOUT`, shows "invalid link".
    """

    template_name = "registration/password_reset_confirm.html"
    success_url = reverse_lazy("staff-password-set")
    post_reset_login = False

    def get_context_data(self, **kwargs):
        return {**admin.site.each_context(self.request), **super().get_context_data(**kwargs)}


class PasswordSetView(PasswordResetCompleteView):
    """After the password was set: a link to the admin's login."""

    template_name = "registration/password_reset_complete.html"

    def get_context_data(self, **kwargs):
        context = {**admin.site.each_context(self.request), **super().get_context_data(**kwargs)}
        return {**context, "login_url": reverse("admin:login")}
def admin_login(request: HttpRequest) -> HttpResponse:
    """The admin's login, refused with a 429 while this (username, address) pair is locked.

    Failures are counted by `receivers.count_failed_login` (Django's `user_login_failed`),
    so only the pair that guessed is locked: the real admin logging in from elsewhere is
    never refused. A locked pair is refused before its password is checked, right or wrong.
    """
    if request.method == "POST":
        wait = lockout.retry_after(scope=lockout.LOGIN, ip=lockout.client_ip(request),
                                   username=request.POST.get("username", ""))
        if wait is not None:
            minutes = math.ceil(wait / 60)
            context = {
                **admin.site.each_context(request),
                "title": _("Too many failed logins"),
                "message": ngettext(
                    "Too many failed logins for this username from your address. Try again in %(minutes)s minute.",
                    "Too many failed logins for this username from your address. Try again in %(minutes)s minutes.",
                    minutes,
                ) % {"minutes": minutes},
                "hint": _("Staff can lift the lockout sooner with “manage.py unlock”."),
                "back": _("Back to the login page"),
            }
            response = TemplateResponse(request, "admin/notifications/login_locked.html", context, status=429)
            response["Retry-After"] = str(wait)
            return response
    return admin.site.login(request)
