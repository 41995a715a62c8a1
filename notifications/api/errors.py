"""Every API error is JSON naming the field at fault; the service's errors map here."""
from __future__ import annotations

import logging

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.defaults import page_not_found
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from notifications.exceptions import NotificationError

logger = logging.getLogger(__name__)


def api_exception_handler(exc, context):
    if isinstance(exc, NotificationError):
        return Response(exc.as_dict(), status=exc.status_code)
    response = exception_handler(exc, context)
    if response is None:
        logger.exception("Unhandled error in %s", context.get("view").__class__.__name__)
        return Response(
            {"detail": "Internal error; it has been logged."}, status=status.HTTP_500_INTERNAL_SERVER_ERROR
        )
    return response


def not_found(request, exception=None):
    """JSON 404 under /api/, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return page_not_found(request, exception)


@csrf_exempt
def no_such_route(request, *args, **kwargs):
    """The last route under /api/: a path no API route matches is a JSON 404, whatever the method.

    `handler404` only answers when DEBUG is off; with DEBUG on Django would answer its
    HTML page listing every URL pattern. Exempt from CSRF, so a POST gets the 404 too.
    """
    return JsonResponse({"detail": "Not found."}, status=404)
