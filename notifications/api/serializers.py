"""Input and output shapes of the API (API.md). Input serializers refuse unknown fields."""
from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from notifications.exceptions import InvalidRecipient
from notifications.models import DeliveryAttempt, DeliveryEvent, EmailAttachment, Message, EmailTemplate, EmailTemplateVersion
from notifications.channels.email.addresses import parse_address, parse_addresses
from notifications.selectors import default_version


# The schema's description, in the request's language (the docstring would stay English).
@extend_schema_serializer(description=gettext_lazy("Refuses fields it does not know, naming each: a typo must not be silently dropped."))
class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know, naming each: a typo must not be silently dropped."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: [_("Unknown field.")] for name in unknown}, code="unknown_field")
        return super().to_internal_value(data)


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "description": gettext_lazy("One address, or several separated by commas.")},
            {"type": "array", "items": {"type": "string", "format": "email"}},
        ]
    }
)
class AddressesField(serializers.Field):
    """An address, a comma-separated string of addresses, or a list of addresses."""

    def __init__(self, *, allow_empty: bool = True, **kwargs) -> None:
        self.allow_empty = allow_empty
        super().__init__(**kwargs)

    def to_internal_value(self, data) -> list[str]:
        try:
            return parse_addresses(data, field=self.field_name, allow_empty=self.allow_empty)
        except InvalidRecipient as exc:
            raise serializers.ValidationError(exc.message, code=exc.code) from None

    def to_representation(self, value):
        return value


@extend_schema_field({"type": "string", "format": "email"})
class AddressField(serializers.Field):
    """One address, checked by the parser every address goes through (`notifications.channels.email.addresses`)."""

    def to_internal_value(self, data) -> str:
        try:
            return parse_address(data, field=self.field_name)
        except InvalidRecipient as exc:
            raise serializers.ValidationError(exc.message, code=exc.code) from None

    def to_representation(self, value):
        return value


class AttachmentInput(StrictSerializer):
    # Not trimmed here: str.strip() would quietly drop control characters the service refuses.
    filename = serializers.CharField(max_length=255, trim_whitespace=False)
    content_type = serializers.CharField(max_length=100)
    data_base64 = serializers.CharField(trim_whitespace=True, help_text=gettext_lazy("The file's bytes, base64-encoded."))

    def validate_data_base64(self, value: str) -> bytes:
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise serializers.ValidationError(_("Not valid base64."), code="invalid_base64") from None

    def to_internal_value(self, data):
        values = super().to_internal_value(data)
        return {"filename": values["filename"], "content_type": values["content_type"], "content": values["data_base64"]}


class VariablesField(serializers.DictField):
    """A JSON object of template variables (values of any JSON type)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(child=serializers.JSONField(), **kwargs)


@extend_schema_field(OpenApiTypes.DATETIME)
class SendAtField(serializers.CharField):
    """ISO 8601 with an offset; checked by the service (`core.outbox.scheduling`), which refuses a
    naive time or one past `OUTBOX_MAX_SCHEDULE_DAYS`, naming `send_at`."""

    def __init__(self, **kwargs) -> None:
        super().__init__(required=False, allow_null=True, allow_blank=True, default=None, max_length=64,
                         help_text=gettext_lazy("When to send (ISO 8601 with an offset); absent or past: now."), **kwargs)


class SendRequest(StrictSerializer):
    to = AddressesField(allow_empty=False)
    template_key = serializers.CharField(max_length=100)
    variables = VariablesField(required=False, default=dict)
    attachments = AttachmentInput(many=True, required=False, default=list)
    language = serializers.CharField(max_length=10, required=False, allow_null=True, default=None)
    cc = AddressesField(required=False, default=list)
    bcc = AddressesField(required=False, default=list)
    reply_to = AddressField(required=False, allow_null=True, default=None)
    source_endpoint = serializers.CharField(max_length=100, required=False, default="api")
    send_at = SendAtField()


class BatchItemInput(serializers.DictField):
    """`{to, variables}`; checked item by item by the service, so one bad item is reported
    in the 201 answer rather than refusing the whole batch."""

    def __init__(self, **kwargs) -> None:
        super().__init__(child=serializers.JSONField(), **kwargs)


class SendBatchRequest(StrictSerializer):
    template_key = serializers.CharField(max_length=100)
    items = serializers.ListField(
        child=BatchItemInput(), min_length=1, help_text=gettext_lazy("Each item is {to, variables}: one merge per item.")
    )
    attachments = AttachmentInput(many=True, required=False, default=list)
    language = serializers.CharField(max_length=10, required=False, allow_null=True, default=None)
    source_endpoint = serializers.CharField(max_length=100, required=False, default="api")
    send_at = SendAtField()


class BatchItemOut(serializers.Serializer):
    index = serializers.IntegerField(help_text=gettext_lazy("The item's position in the request."))
    id = serializers.UUIDField(required=False, help_text=gettext_lazy("The message's id, when the item was accepted."))
    to = serializers.CharField(required=False)
    status = serializers.CharField(required=False)
    errors = serializers.DictField(required=False, help_text=gettext_lazy("Why the item was refused: {field: [messages]}."))
    codes = serializers.DictField(
        required=False, help_text=gettext_lazy("The errors' stable codes, in their shape: {field: [codes]} (docs/ERROR_CODES.md).")
    )


class SendBatchResponse(serializers.Serializer):
    items = BatchItemOut(many=True)
    total = serializers.IntegerField()

    @staticmethod
    def from_results(results) -> dict:
        items = []
        for result in results:
            if result.errors is not None:
                items.append({"index": result.index, "errors": result.errors, "codes": result.codes,
                              **({"to": ", ".join(result.to)} if result.to else {})})
            for message in result.messages:
                items.append({"index": result.index, "id": message.pk, "to": message.address,
                              "status": message.status})
        return SendBatchResponse({"items": items, "total": len(items)}).data


class MessageItem(serializers.ModelSerializer):
    to = serializers.EmailField(source="address")

    class Meta:
        model = Message
        fields = ["id", "to", "status"]


class SendResponse(serializers.Serializer):
    items = MessageItem(many=True)
    total = serializers.IntegerField()


class TemplateListItem(serializers.ModelSerializer):
    subject = serializers.SerializerMethodField()
    version = serializers.SerializerMethodField()

    class Meta:
        model = EmailTemplate
        fields = ["key", "name", "subject", "category", "kind", "version", "is_active"]

    def get_subject(self, template) -> str:
        version = default_version(template)
        return version.subject if version else ""

    def get_version(self, template) -> int | None:
        version = default_version(template)
        return version.version if version else None


class VersionOut(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = EmailTemplateVersion
        fields = [
            "id", "language", "version", "subject", "preheader", "html_content", "text_content",
            "is_active", "created_by", "created_at",
        ]


class TemplateDetail(serializers.ModelSerializer):
    versions = VersionOut(many=True, source="active_versions")

    class Meta:
        model = EmailTemplate
        fields = [
            "key", "name", "description", "category", "kind", "lane", "required_variables",
            "optional_variables", "sensitive_variables", "attachments_allowed", "max_attempts",
            "default_language", "extra_recipients", "sample_variables", "layout", "is_active",
            "updated_at", "versions",
        ]


# The schema's description, in the request's language (the docstring would stay English).
@extend_schema_serializer(description=gettext_lazy("A new version's content; the language defaults to the template's default one."))
class TemplateUpdateRequest(StrictSerializer):
    """A new version's content; the language defaults to the template's default one."""

    subject = serializers.CharField()
    html_content = serializers.CharField()
    text_content = serializers.CharField(required=False, allow_blank=True, default="")
    preheader = serializers.CharField(required=False, allow_blank=True, default="")
    language = serializers.CharField(max_length=10, required=False, allow_null=True, default=None)
    base_version = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=0,
        help_text=gettext_lazy("The number of the language's active version this wording started from (0: there was none). "
        "When another version has become active since, the PUT is refused (409, stale_version). "
        "The If-Match header does the same for the whole template."),
    )


# The schema's description, in the request's language (the docstring would stay English).
@extend_schema_serializer(description=gettext_lazy("The version a PUT added, and whether the PUT said what it was based on."))
class VersionSaved(VersionOut):
    """The version a PUT added, and whether the PUT said what it was based on."""

    unconditional = serializers.SerializerMethodField(
        help_text=gettext_lazy("True when the PUT carried neither If-Match nor base_version: it replaced whatever "
        "version was active, unseen. Send one of them to have a stale PUT refused instead.")
    )

    class Meta(VersionOut.Meta):
        fields = [*VersionOut.Meta.fields, "unconditional"]

    def get_unconditional(self, version) -> bool:
        return bool(self.context.get("unconditional"))


# The schema's description, in the request's language (the docstring would stay English).
@extend_schema_serializer(description=gettext_lazy("A 409 `stale_version`: the save was based on a state another save has since replaced."))
class StaleVersionResponse(serializers.Serializer):
    """A 409 `stale_version`: the save was based on a state another save has since replaced."""

    detail = serializers.CharField(help_text=gettext_lazy("Who saved what and when, since the state the PUT was based on."))
    active_version = serializers.DictField(
        required=False, help_text=gettext_lazy("The active version of the PUT's language: {language, version, id, saved_by, "
        "saved_at, rollback}.")
    )
    changes = serializers.ListField(
        child=serializers.DictField(), help_text=gettext_lazy("Each save that came between, shaped as active_version "
        "(version null for a save of the template's settings).")
    )
    codes = serializers.DictField(help_text=gettext_lazy('{"detail": "stale_version"}'))


class TestRenderRequest(StrictSerializer):
    to = AddressesField(allow_empty=False)
    variables = VariablesField(required=False, default=dict)
    language = serializers.CharField(max_length=10, required=False, allow_null=True, default=None)


class TestRenderResponse(serializers.Serializer):
    id = serializers.UUIDField(help_text=gettext_lazy("The first test message's id."))
    subject = serializers.CharField()
    html = serializers.CharField()
    text = serializers.CharField()
    items = MessageItem(many=True)
    total = serializers.IntegerField()


class MessageListItem(serializers.ModelSerializer):
    to = serializers.EmailField(source="address")

    class Meta:
        model = Message
        fields = ["id", "to", "subject", "status", "template_key", "created_at", "sent_at"]


class AttachmentOut(serializers.ModelSerializer):
    sha256 = serializers.CharField(source="blob_id", read_only=True)

    class Meta:
        model = EmailAttachment
        fields = ["id", "filename", "content_type", "size_bytes", "sha256"]


class EventOut(serializers.ModelSerializer):
    detail_code = serializers.CharField(read_only=True, help_text=gettext_lazy(
        "The stable code of our own description (docs/ERROR_CODES.md, stored audit text), or \"\" when "
        "`detail` is a provider's own words."))
    detail_params = serializers.DictField(read_only=True, allow_null=True, help_text=gettext_lazy("The code's parameters (data)."))
    detail_text = serializers.CharField(read_only=True, help_text=gettext_lazy(
        "The description in the request's language (Accept-Language): from `detail_code`, else `detail` as stored."))

    class Meta:
        model = DeliveryEvent
        fields = ["id", "event_type", "provider", "recipient", "occurred_at", "detail", "detail_code", "detail_params",
                  "detail_text"]


class AttemptOut(serializers.ModelSerializer):
    error_code = serializers.CharField(read_only=True, help_text=gettext_lazy(
        "The stable code of the error (docs/ERROR_CODES.md), or \"\"."))
    error_params = serializers.DictField(read_only=True, allow_null=True, help_text=gettext_lazy("The code's parameters (data)."))
    error_text = serializers.CharField(read_only=True, help_text=gettext_lazy(
        "The error in the request's language: from `error_code`, else `error` as stored."))
    server = serializers.CharField(source="sent_via", read_only=True, help_text=gettext_lazy(
        "What it was handed to (sent_via)."))  # the API's name, kept

    class Meta:
        model = DeliveryAttempt
        fields = ["number", "started_at", "finished_at", "outcome", "error", "error_code", "error_params", "error_text",
                  "server"]


class MessageDetail(serializers.ModelSerializer):
    to = serializers.EmailField(source="address")
    template_version = serializers.IntegerField(source="template_version.version", allow_null=True, default=None)
    attachments = AttachmentOut(many=True)
    delivery_attempts = AttemptOut(many=True)
    events = EventOut(many=True)
    resent_from = serializers.UUIDField(source="resent_from_id", read_only=True, allow_null=True,
                                        help_text=gettext_lazy("The message this one resends (staff resend in the admin), or null."))
    error_code = serializers.CharField(read_only=True, help_text=gettext_lazy(
        "The stable code of `error_message` (docs/ERROR_CODES.md, stored audit text), or \"\" for none or an old row."))
    error_params = serializers.DictField(read_only=True, allow_null=True, help_text=gettext_lazy("The code's parameters (data)."))
    error_text = serializers.CharField(read_only=True, help_text=gettext_lazy(
        "The error in the request's language (Accept-Language): from `error_code`, else `error_message` as "
        "stored (in English)."))

    class Meta:
        model = Message
        fields = [
            "id", "to", "cc", "bcc", "reply_to", "from_email", "template_key", "template_version", "language",
            "subject", "html_content", "text_content", "status", "lane", "attempts", "max_attempts",
            "is_test", "is_masked", "source_endpoint", "provider_message_id", "error_message", "error_code", "error_params", "error_text", "bounce_type", "bounce_subtype",
            "created_at", "send_at", "next_attempt_at", "sent_at", "delivered_at", "attachments_count", "attachments",
            "delivery_attempts", "events", "resent_from",
        ]


# The schema's description, in the request's language (the docstring would stay English).
@extend_schema_serializer(description=gettext_lazy('`{"detail": "..."}` or `{field: ["message", ...]}`, with `codes` in the same shape.'))
class ErrorResponse(serializers.Serializer):
    """`{"detail": "..."}` or `{field: ["message", ...]}`, with `codes` in the same shape."""

    detail = serializers.CharField(required=False)
    codes = serializers.DictField(
        help_text=gettext_lazy("The answer's shape with a stable code in place of each message: {\"detail\": \"not_found\"} "
        "or {field: [codes]}. Messages follow Accept-Language; codes never change (docs/ERROR_CODES.md).")
    )
