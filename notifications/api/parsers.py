"""A JSON parser that refuses bodies past `API_MAX_BODY_BYTES` with a 413, before parsing, and
says what is wrong with a body it cannot read in words of ours.

DRF's own answer repeats the exception's text (`JSON parse error - Expecting value: line 1
column 1 (char 0)`, or a `UnicodeDecodeError`'s): that is Python speaking, in English
whatever the request's language, and it names the parser's internals. Ours says where
(line and column, or byte offset), with the same code, `parse_error`.
"""
from __future__ import annotations

import json
from io import BytesIO

from django.conf import settings
from django.utils.translation import gettext as _
from notifications.formatting import number
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
            % {"limit": number(limit), "setting": "API_MAX_BODY_BYTES"},
            code="body_too_large",
        )
        if declared and declared.isdigit() and int(declared) > limit:
            raise too_large
        body = stream.read(limit + 1) if stream is not None else b""
        if len(body) > limit:
            raise too_large
        try:
            return super().parse(BytesIO(body), media_type, parser_context)
        except exceptions.ParseError as exc:
            raise exceptions.ParseError(unreadable_json(exc.__context__), code="parse_error") from None


def unreadable_json(cause: BaseException | None) -> str:
    """Our message for the error DRF's parser met (its `ValueError`), never that error's text."""
    if isinstance(cause, json.JSONDecodeError):
        return _("The body is not valid JSON (line %(line)s, column %(column)s).") % {
            "line": cause.lineno, "column": cause.colno}
    if isinstance(cause, UnicodeDecodeError):
        return _("The body is not UTF-8 text (at byte offset %(position)s).") % {"position": cause.start}
    return _("The body is not valid JSON.")
