"""A JSON parser that refuses bodies past `API_MAX_BODY_BYTES` with a 413, before parsing."""
from __future__ import annotations

from django.conf import settings
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "body_too_large"


class LimitedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.API_MAX_BODY_BYTES
        request = (parser_context or {}).get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        too_large = RequestTooLarge(
            _("The request body is larger than the %(limit)s bytes allowed (%(setting)s).")
            % {"limit": f"{limit:,}", "setting": "API_MAX_BODY_BYTES"},
            code="body_too_large",
        )
        if declared and declared.isdigit() and int(declared) > limit:
            raise too_large
        body = stream.read(limit + 1) if stream is not None else b""
        if len(body) > limit:
            raise too_large
        from io import BytesIO

        return super().parse(BytesIO(body), media_type, parser_context)
