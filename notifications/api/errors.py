"""Every API error is JSON naming the field at fault; the service's errors map here.

Each error answer carries `codes`: the same shape as the answer with a stable code in place
of each message (docs/ERROR_CODES.md). Messages follow the request's language
(`Accept-Language`), codes never change, so clients match on codes.
"""
from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.defaults import page_not_found
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from notifications.exceptions import NotificationError

logger = logging.getLogger(__name__)

CODES_KEY = "codes"


def with_codes(body: dict, codes: dict) -> dict:
    """`body` and its `codes`; a field literally named `codes` (an unknown one) is reported in `codes`."""
    return {**body, CODES_KEY: codes}


def detail_body(message: str, code: str) -> dict:
    """A `{"detail": ...}` error answer with its code."""
    return {"detail": message, CODES_KEY: {"detail": code}}


def bearer_expected() -> str:
    return _("Authentication credentials were not provided: send the header 'Authorization: Bearer <key>'.")


def api_exception_handler(exc, context):
    if isinstance(exc, NotificationError):
        return Response(with_codes(exc.as_dict(), exc.codes()), status=exc.status_code)
    response = exception_handler(exc, context)
    if response is None:
        logger.exception("Unhandled error in %s", context.get("view").__class__.__name__)
        return Response(
            detail_body(_("Internal error; it has been logged."), "internal_error"),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    if isinstance(exc, exceptions.NotAuthenticated):
        response.data = {"detail": bearer_expected()}
    elif isinstance(exc, Http404):  # get_object_or_404's "No <Model> matches the given query." is never translated
        response.data = {"detail": _("Not found.")}
    if isinstance(response.data, dict):
        response.data = with_codes(response.data, _codes(exc, response.data))
    return response


def _codes(exc, data: dict):
    """DRF's own codes (`get_codes()`), shaped like the answer DRF built from the exception."""
    if isinstance(exc, Http404):
        return {"detail": "not_found"}
    if isinstance(exc, PermissionDenied):
        return {"detail": "permission_denied"}
    codes = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
    if isinstance(codes, dict):
        return codes
    return {"detail": codes} if "detail" in data else {key: codes for key in data}


def not_found(request, exception=None):
    """JSON 404 under /api/, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse(detail_body(_("Not found."), "not_found"), status=404)
    return page_not_found(request, exception)


@csrf_exempt
def no_such_route(request, *args, **kwargs):
    """The last route under /api/: a path no API route matches is a JSON 404, whatever the method.

    `handler404` only answers when DEBUG is off; with DEBUG on Django would answer its
    HTML page listing every URL pattern. Exempt from CSRF, so a POST gets the 404 too.
    """
    return JsonResponse(detail_body(_("Not found."), "not_found"), status=404)
