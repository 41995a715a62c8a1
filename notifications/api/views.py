"""API views: validate the input, call a service or selector, serialize the answer."""
from __future__ import annotations

import uuid
from collections.abc import Callable

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from notifications.models import Message, Status
from notifications.selectors import messages_cancellable_by, messages_visible_to, templates_with_active_versions
from notifications.policies.idempotency import run_once
from notifications.core.outbox.message_actions import cancel_message
from notifications.channels.email.sending import send_batch, send_mail_template
from notifications.authoring.concurrency import current_state, if_match_tags
from notifications.authoring.editing import save_version
from notifications.authoring.testing import send_rendered_test
from notifications.authoring.versions import VersionContent, get_template

from notifications.api import permissions as perms
from notifications.api import serializers as s
from notifications.api.pagination import ItemsPagination
from notifications.api.throttling import ClientRateThrottle, SendRateThrottle

ERRORS = {
    400: OpenApiResponse(s.ErrorResponse, description=gettext_lazy("Bad input; the body names each field at fault.")),
    401: OpenApiResponse(s.ErrorResponse, description=gettext_lazy("No or invalid credentials.")),
    403: OpenApiResponse(s.ErrorResponse, description=gettext_lazy("Authenticated, without the permission.")),
    429: OpenApiResponse(s.ErrorResponse, description=gettext_lazy("Too many requests; see Retry-After.")),
}
NOT_FOUND = {404: OpenApiResponse(s.ErrorResponse, description=gettext_lazy("No such object (or not yours)."))}
CONFLICT = {409: OpenApiResponse(s.ErrorResponse, description=gettext_lazy("The message is in a status the action cannot leave."))}
STALE = {409: OpenApiResponse(
    s.StaleVersionResponse,
    description=gettext_lazy("Stale (stale_version): another version became active since the If-Match or base_version; "
    "the body names it and who saved it."),
)}
IDEMPOTENCY_CONFLICT = {422: OpenApiResponse(s.ErrorResponse, description=gettext_lazy("Idempotency-Key reused with another body."))}
BODY_ERRORS = {
    413: OpenApiResponse(
        s.ErrorResponse, description=gettext_lazy("Body, attachment or number of recipients past a limit; the message names the setting.")
    ),
    415: OpenApiResponse(s.ErrorResponse, description=gettext_lazy("The body is not application/json.")),
}
SEND_EXAMPLES = [
    OpenApiExample(
        "Onboarding welcome (004)",
        request_only=True,
        value={
            "to": "john@techconnect.bj",
            "template_key": "onboarding_welcome",
            "variables": {
                "reseller_name": "Tech Connect SA",
                "validation_link": "https://admin-rgz.duckdns.org",
                "estimated_duration": "7-12 jours",
            },
        },
    ),
    OpenApiExample(
        "Critical incident to two addresses (004)",
        request_only=True,
        value={
            "to": "noc@rgz.bj,reseller@techconnect.bj",
            "template_key": "incident_alert_critical",
            "variables": {
                "incident_number": "INC-2026-000847", "title": "Fiber cut central",
                "description": "Central BGP flap, 45 sites offline", "priority": "P0", "affected_sites": 45,
                "detected_at": "2026-02-21T14:30:00Z", "status_link": "https://status.rgz.bj",
            },
        },
    ),
]
IF_MATCH = OpenApiParameter(
    "If-Match", str, OpenApiParameter.HEADER, required=False,
    description=gettext_lazy("The ETag a GET of the template answered: the PUT is refused (409) if the template changed since. "
    "Without it nor base_version, the PUT is unconditional (the answer's `unconditional` says so)."),
)
IDEMPOTENCY = OpenApiParameter(
    "Idempotency-Key", str, OpenApiParameter.HEADER, required=False,
    description=gettext_lazy("Retrying with the same key and body answers the first response and sends nothing more."),
)


def _idempotency_scope(request) -> str:
    key = request.auth
    return f"key:{key.pk}" if hasattr(key, "pk") else f"user:{request.user.pk}"


def _is_test(request) -> bool:
    return bool(getattr(request.auth, "is_test", False))


def _send_once(request, send: Callable[[str], tuple[int, dict]]) -> Response:
    """Run `send(idempotency_key)` at most once per Idempotency-Key (services.idempotency)."""
    key = request.headers.get("Idempotency-Key", "")
    code, body = run_once(scope=_idempotency_scope(request), key=key, payload=request.data, action=lambda: send(key))
    return Response(body, status=code)



class SendView(APIView):
    name = gettext_lazy("Send")  # the browsable API's title, in the request's language
    required_permissions = {"POST": (perms.SEND,)}
    throttle_classes = [ClientRateThrottle, SendRateThrottle]

    @extend_schema(
        operation_id="email_send",
        request=s.SendRequest,
        parameters=[IDEMPOTENCY],
        examples=SEND_EXAMPLES,
        responses={
            201: s.SendResponse,
            **ERRORS,
            **NOT_FOUND,
            **BODY_ERRORS,
            **IDEMPOTENCY_CONFLICT,
        },
        summary=gettext_lazy("Send a templated email to one or more recipients"),
    )
    def post(self, request):
        data = s.SendRequest(data=request.data)
        data.is_valid(raise_exception=True)

        def send(key: str) -> tuple[int, dict]:
            messages = send_mail_template(
                **data.validated_data, sent_by=request.user, is_test=_is_test(request), idempotency_key=key
            )
            return status.HTTP_201_CREATED, s.SendResponse({"items": messages, "total": len(messages)}).data

        return _send_once(request, send)


class SendBatchView(APIView):
    name = gettext_lazy("Send a batch")  # the browsable API's title, in the request's language
    required_permissions = {"POST": (perms.SEND,)}
    throttle_classes = [ClientRateThrottle, SendRateThrottle]

    @extend_schema(
        operation_id="email_send_batch",
        request=s.SendBatchRequest,
        parameters=[IDEMPOTENCY],
        responses={
            201: s.SendBatchResponse,
            **ERRORS,
            **NOT_FOUND,
            **BODY_ERRORS,
            **IDEMPOTENCY_CONFLICT,
        },
        summary=gettext_lazy("Mail merge: one template, each item sent with its own variables"),
        description=gettext_lazy("An item that cannot be sent is answered with its `errors`; the others are sent. "
        "When no item can be sent the answer is 400 with every item's errors."),
    )
    def post(self, request):
        data = s.SendBatchRequest(data=request.data)
        data.is_valid(raise_exception=True)

        def send(key: str) -> tuple[int, dict]:
            results = send_batch(
                **data.validated_data, sent_by=request.user, is_test=_is_test(request), idempotency_key=key
            )
            return status.HTTP_201_CREATED, s.SendBatchResponse.from_results(results)

        return _send_once(request, send)


class TemplateListView(generics.ListAPIView):
    name = gettext_lazy("Templates")  # the browsable API's title, in the request's language
    required_permissions = {"GET": (perms.SEND, perms.VIEW_TEMPLATES)}
    serializer_class = s.TemplateListItem
    pagination_class = ItemsPagination
    filter_backends = [filters.DjangoFilterBackend]
    filterset_fields = {"category": ["exact"], "kind": ["exact"]}

    def get_queryset(self):
        return templates_with_active_versions().order_by("key")

    @extend_schema(operation_id="email_templates_list", responses={200: s.TemplateListItem(many=True), **ERRORS})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class TemplateDetailView(APIView):
    name = gettext_lazy("Template")  # the browsable API's title, in the request's language
    required_permissions = {"GET": (perms.SEND, perms.VIEW_TEMPLATES), "PUT": (perms.ADD_VERSION,)}

    def _template(self, key: str):
        return get_object_or_404(templates_with_active_versions(), key=key)

    @extend_schema(
        operation_id="email_templates_retrieve",
        responses={200: OpenApiResponse(s.TemplateDetail, description=gettext_lazy("The ETag header names this state of the "
                                        "template: send it back in If-Match with a PUT.")), **ERRORS, **NOT_FOUND},
    )
    def get(self, request, key: str):
        template = self._template(key)
        response = Response(s.TemplateDetail(template).data)
        response["ETag"] = current_state(template, active_versions=template.active_versions).etag
        return response

    @extend_schema(
        operation_id="email_templates_update",
        request=s.TemplateUpdateRequest,
        parameters=[IF_MATCH],
        responses={200: s.VersionSaved, **ERRORS, **NOT_FOUND, **STALE, **BODY_ERRORS},
        summary=gettext_lazy("Add a version (a PUT never overwrites one)"),
    )
    def put(self, request, key: str):
        template = get_template(key, require_active=False)
        data = s.TemplateUpdateRequest(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        language, base_version = values.pop("language") or template.default_language, values.pop("base_version")
        saved = save_version(
            template=template, language=language, content=VersionContent(**values), user=request.user,
            if_match=if_match_tags(request.headers.get("If-Match")), base_version=base_version,
        )
        body = s.VersionSaved(saved.version, context={"unconditional": not saved.conditional}).data
        return Response(body, status=status.HTTP_200_OK, headers={"ETag": saved.etag})


class TemplateTestView(APIView):
    name = gettext_lazy("Test send of a template")  # the browsable API's title, in the request's language
    required_permissions = {"POST": (perms.TEST_TEMPLATE,)}
    throttle_classes = [ClientRateThrottle, SendRateThrottle]

    @extend_schema(
        operation_id="email_templates_test",
        request=s.TestRenderRequest,
        responses={200: s.TestRenderResponse, **ERRORS, **NOT_FOUND, **BODY_ERRORS},
        summary=gettext_lazy("Render a template and send it to test addresses only"),
    )
    def post(self, request, key: str):
        data = s.TestRenderRequest(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        messages = send_rendered_test(
            template_key=key, to=values["to"], variables=values["variables"], language=values["language"],
            user=request.user, is_test=_is_test(request),
        )
        first = messages[0]
        body = {
            "id": first.pk, "subject": first.subject, "html": first.html_content, "text": first.text_content,
            "items": messages, "total": len(messages),
        }
        return Response(s.TestRenderResponse(body).data)


class MessageFilter(filters.FilterSet):
    to = filters.CharFilter(field_name="address", lookup_expr="iexact")
    status = filters.ChoiceFilter(choices=Status.choices)
    template_key = filters.CharFilter()

    class Meta:
        model = Message
        fields = ["to", "status", "template_key"]


class MessageListView(generics.ListAPIView):
    name = gettext_lazy("Messages")  # the browsable API's title, in the request's language
    required_permissions = {"GET": (perms.VIEW_MESSAGES, perms.SEND)}
    serializer_class = s.MessageListItem
    pagination_class = ItemsPagination
    filter_backends = [filters.DjangoFilterBackend]
    filterset_class = MessageFilter

    def get_queryset(self):
        return messages_visible_to(self.request.user).defer("html_content", "text_content", "mime").order_by("-created_at")

    @extend_schema(operation_id="email_messages_list", responses={200: s.MessageListItem(many=True), **ERRORS})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class MessageDetailView(APIView):
    name = gettext_lazy("Message")  # the browsable API's title, in the request's language
    required_permissions = {"GET": (perms.VIEW_MESSAGES, perms.SEND)}

    @extend_schema(
        operation_id="email_messages_retrieve",
        parameters=[OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
        responses={200: s.MessageDetail, **ERRORS, **NOT_FOUND},
    )
    def get(self, request, pk):
        queryset = messages_visible_to(request.user).select_related("template_version").prefetch_related(
            "attachments", "delivery_attempts", "events"
        )
        message = get_object_or_404(queryset, pk=_message_id(pk))
        return Response(s.MessageDetail(message).data)


class MessageCancelView(APIView):
    name = gettext_lazy("Cancel a message")  # the browsable API's title, in the request's language
    required_permissions = {"POST": (perms.SEND, perms.CANCEL_MESSAGES)}

    @extend_schema(
        operation_id="email_messages_cancel",
        request=None,
        parameters=[OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
        responses={200: s.MessageDetail, **ERRORS, **NOT_FOUND, **CONFLICT, **BODY_ERRORS},
        summary=gettext_lazy("Cancel a scheduled or queued message: it is never sent"),
    )
    def post(self, request, pk):
        message = get_object_or_404(messages_cancellable_by(request.user), pk=_message_id(pk))
        cancel_message(message=message)
        detail = messages_visible_to(request.user).prefetch_related("attachments", "delivery_attempts", "events")
        return Response(s.MessageDetail(detail.filter(pk=message.pk).first() or message).data)


def _message_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(_("No message with this id."), code="not_found") from None

