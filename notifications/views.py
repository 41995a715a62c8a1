"""The site's front page: where a person who opens `/` is sent."""
from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render


def home(request: HttpRequest) -> HttpResponse:
    """In development `/` is the admin, where the work is; elsewhere a page that links to it
    and to the API docs, so a deployment's root never shows a 404 or the admin's login first."""
    if settings.ENVIRONMENT == "development":
        return redirect("admin:index")
    return render(request, "site/home.html")
