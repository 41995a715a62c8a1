"""Limits every request must satisfy before any view reads it: the API, the admin and
the webhooks alike.

- A body declared (`Content-Length`) larger than `API_MAX_BODY_BYTES` is a 413, answered
  before a byte of it is read. Django's own `DATA_UPLOAD_MAX_MEMORY_SIZE` would otherwise
  raise `RequestDataTooBig` wherever the body is first touched, inside a view as a 500.
- A JSON body nested deeper than `API_MAX_JSON_DEPTH` is a 400 naming where: measured on
  the raw text, because parsing it is what exhausts the stack.
- A JSON body holding a NUL character (`\\u0000`), in a key or a value, is a 400 naming
  where: PostgreSQL stores NUL in neither text nor jsonb, so it would fail at the write.
  So is a NUL in the path or a query parameter (PostgreSQL refuses it in a lookup too).

Malformed JSON passes through: the view's parser refuses it with its own message.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import translation
from django.utils.translation import gettext as _

from notifications import jsoninput
from notifications.channels.email.webhooks import inbound
from notifications.exceptions import InputError
from notifications.formatting import number

BODY_FIELD = "body"
logger = logging.getLogger(__name__)


class RequestLimitsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # Answered before LocaleMiddleware runs: in the request's language all the same.
        language = translation.get_language_from_request(request)
        with translation.override(language):
            answer = refusal(request)
        if answer is None:
            return self.get_response(request)
        answer.headers.setdefault("Content-Language", language)
        return answer


def refusal(request: HttpRequest) -> JsonResponse | None:
    """The answer to a request that breaks a limit, or None to let it through."""
    for name, values in request.GET.lists():
        if jsoninput.NUL in name or any(jsoninput.NUL in value for value in values):
            field = name if jsoninput.NUL not in name else "query"
            message = _("The query parameter contains a NUL character (U+0000), which cannot be stored or looked up.")
            return JsonResponse({field: [message], "codes": {field: ["unstorable_text"]}}, status=400)
    if jsoninput.NUL in request.path:
        message = _("The path contains a NUL character (U+0000), which cannot be stored or looked up.")
        return JsonResponse({"detail": message, "codes": {"detail": "unstorable_text"}}, status=400)
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if not declared.isdigit():
        message = _("The Content-Length header is not a number.")
        return JsonResponse({"detail": message, "codes": {"detail": "invalid_content_length"}}, status=400)
    limit, setting = settings.API_MAX_BODY_BYTES, "API_MAX_BODY_BYTES"
    if inbound.is_inbound_path(request.path):
        # Inbound mail has its own cap (a whole message, attachments included), logged as a refusal.
        limit, setting = inbound.body_limit(), "EMAIL_INBOUND_MAX_BYTES"
    if int(declared) > limit:
        if setting == "EMAIL_INBOUND_MAX_BYTES":
            logger.warning("Inbound mail refused on %s: %s bytes declared, above %s (%s).",
                           request.path, declared, limit, setting)
        return _too_large(limit, setting)
    if int(declared) == 0 or not _is_json(request.content_type or ""):
        return None
    try:
        body = request.body
    except RequestDataTooBig:
        return _too_large(settings.DATA_UPLOAD_MAX_MEMORY_SIZE, "DATA_UPLOAD_MAX_MEMORY_SIZE")
    try:
        text = body.decode(request.encoding or "utf-8")
    except (UnicodeDecodeError, LookupError):
        return None
    try:
        check_json_text(text, max_depth=settings.API_MAX_JSON_DEPTH)
    except InputError as exc:
        return JsonResponse({**exc.as_dict(), "codes": exc.codes()}, status=exc.status_code)
    return None


def check_json_text(text: str, *, max_depth: int) -> None:
    """Raise `NestingTooDeep` or `UnstorableText` for a JSON document, named by its top-level field."""
    path = jsoninput.deepest_path(text, max_depth=max_depth)
    if path is not None:
        field, rest = _split(path)
        raise jsoninput.too_deep(field=field, path=rest, max_depth=max_depth)
    if "\\u0000" not in text:  # the only way a valid JSON document can hold a NUL
        return
    try:
        document = json.loads(text)
    except ValueError:
        return
    if isinstance(document, dict):
        for key, value in document.items():
            if jsoninput.NUL in key:
                jsoninput.check_value({key: None}, field=BODY_FIELD, max_depth=max_depth)
            jsoninput.check_value(value, field=key, max_depth=max_depth)
    else:
        jsoninput.check_value(document, field=BODY_FIELD, max_depth=max_depth)


def _split(path: list[jsoninput.PathPart]) -> tuple[str, list[jsoninput.PathPart]]:
    """A path's top-level field (what the API calls the input) and the rest of it."""
    if path and isinstance(path[0], str) and jsoninput.NUL not in path[0]:
        return path[0], path[1:]
    return BODY_FIELD, path


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or content_type.endswith("+json")


def _too_large(limit: int, setting: str) -> JsonResponse:
    message = _("The request body is larger than the %(limit)s bytes allowed (%(setting)s).") % {
        "limit": number(limit), "setting": setting,
    }
    return JsonResponse({"detail": message, "codes": {"detail": "body_too_large"}}, status=413)


class ContentSecurityPolicyMiddleware:
    """`CONTENT_SECURITY_POLICY` on every answer that does not carry a policy of its own.

    Django 5.2 has no CSP of its own. One policy covers the admin, the API, the browsable
    API and the API docs: scripts only from our own origin (no inline script anywhere: the
    Swagger UI's start-up script is served as a file), nothing framed from elsewhere, no
    form posting away. Inline styles stay allowed: the editor's preview shows email, which
    is inline styles throughout, in a `srcdoc` frame that inherits this policy on top of its
    own stricter one (`htmlpreview.FRAME_POLICY`). A view that sets its own header (an
    attachment download's `sandbox`) keeps it.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if settings.CONTENT_SECURITY_POLICY:
            response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        return response
