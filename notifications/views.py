"""The site's own pages outside the admin and the API: the front page, the staff's set-password link."""
from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.views import PasswordResetCompleteView, PasswordResetConfirmView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy


def home(request: HttpRequest) -> HttpResponse:
    """In development `/` is the admin, where the work is; elsewhere a page that links to it
    and to the API docs, so a deployment's root never shows a 404 or the admin's login first."""
    if settings.ENVIRONMENT == "development":
        return redirect("admin:index")
    return render(request, "site/home.html")


class SetPasswordView(PasswordResetConfirmView):
    """The page a staff link opens (`services.staff.set_password_link`): choose a password, once.

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
