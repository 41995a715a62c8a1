"""The site's address in the links the commands print (`create_staff`, `ensure_admin --reset`)."""
from __future__ import annotations

from django.conf import settings
from django.core.management.base import CommandError
from django.utils.translation import gettext as _

DEVELOPMENT_BASE_URL = "http://127.0.0.1:8000"  # `make run`'s address


def add_base_url_argument(parser) -> None:
    parser.add_argument(
        "--base-url", default="",
        help=_("The site's address the link starts with, e.g. https://notify.example.org "
               "(required outside development; http://127.0.0.1:8000 in development)."),
    )


def base_url(given: str) -> str:
    """`given`, else `make run`'s address in development; outside it a link to a guessed host
    would lead nowhere, so the address must be given."""
    if given:
        if not given.startswith(("http://", "https://")):
            raise CommandError(_("--base-url must start with http:// or https://, e.g. https://notify.example.org."))
        return given
    if settings.ENVIRONMENT == "development":
        return DEVELOPMENT_BASE_URL
    raise CommandError(_("Give --base-url, the site's address the link starts with (e.g. https://notify.example.org)."))
