"""OpenAPI post-processing: publish the routes as API.md writes them, without a trailing slash,
and the schema's title and description in the request's language.

Both spellings are served; the schema lists one so clients and generated SDKs agree.
"""
from __future__ import annotations

from django.utils.translation import gettext as _


def strip_trailing_slashes(result, generator, request, public):
    result["paths"] = {
        (path.rstrip("/") or "/"): operations for path, operations in result.get("paths", {}).items()
    }
    return result


def translate_info(result, generator, request, public):
    """The schema's title and description, translated (the schema is generated per request,
    under its language: Accept-Language, or `?lang=`). SPECTACULAR_SETTINGS keeps them in
    English: settings are read without Django set up (tests, checks), where a lazy
    translation cannot be evaluated."""
    result["info"]["title"] = _("Notifications API")
    result["info"]["description"] = _("Send templated email, manage template versions, and read the audit trail.")
    return result
