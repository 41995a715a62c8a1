"""The webhook views: anymail's parsers, behind our route, secret, body and SNS checks.

- `/anymail/amazon_ses/tracking/`, `/anymail/sendgrid/tracking/` and the inbound routes;
- `POST /api/v1/email/webhook` (004): the SES tracking view under the API's path.

In order, a request is answered:
- 404 when its provider is neither the one the configured backend sends through nor listed
  in `WEBHOOK_PROVIDERS` (`providers.enabled`): the route does not exist then;
- 401 without the provider's secret, 403 with no secret set outside development (`auth`);
- 400 for a body no provider sends: JSON (of any content type: SNS posts `text/plain`) nested
  past `API_MAX_JSON_DEPTH` or holding a NUL, an SNS `Message` that does, a timestamp out
  of range, a payload that is not the provider's shape; 403 when the SNS message does not
  verify or comes from another topic; 413 for inbound mail above `EMAIL_INBOUND_MAX_BYTES`;
- 503 only when SNS's signing certificate cannot be fetched, or SNS cannot be reached to
  confirm a subscription, now: SNS retries 5xx answers, and drops an event answered 4xx.

Every refusal is JSON with our own message and a stable code (docs/ERROR_CODES.md), logged,
and stores nothing. A verified event is answered 200 even when it matches no message, so the
provider stops retrying. Tracking events are recorded in bulk (`tracking.record_many`): a
POST of thousands costs a few SQL statements.
"""
from __future__ import annotations

import json
import logging

from anymail.exceptions import AnymailError, AnymailWebhookValidationFailure
from anymail.webhooks.amazon_ses import AmazonSESInboundWebhookView, AmazonSESTrackingWebhookView
from anymail.webhooks.sendgrid import (
    SendGridBaseWebhookView,
    SendGridInboundWebhookView,
    SendGridTrackingWebhookView,
)
from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.utils.translation import gettext as _

from notifications.exceptions import InputError, NotificationError
from notifications.middleware import check_json_text
from notifications.core import tracking

from notifications.channels.email.webhooks import auth, inbound, providers, sns
from notifications.channels.email.webhooks.errors import InvalidTimestamp, UnreadablePayload
from notifications.channels.email.webhooks.mapping import provider_event

logger = logging.getLogger(__name__)

# datetime.fromtimestamp's range on every platform: 1970-01-01 .. 9999-12-31.
MAX_TIMESTAMP = 253402300799
# The fields of SendGrid's inbound POST that anymail reads as JSON.
SENDGRID_INBOUND_JSON_FIELDS = ("envelope", "charsets", "attachment-info")


def error_answer(exc: NotificationError) -> JsonResponse:
    return JsonResponse({**exc.as_dict(), "codes": exc.codes()}, status=exc.status_code)


class ProviderWebhookMixin:
    """Our checks around anymail's view: see the module's docstring.

    Replaces anymail's `post` (same steps: validate, parse, deliver), so anything anymail
    cannot parse is a 4xx with our message rather than a 500 the provider would retry, or a
    Python exception's text.
    """

    provider = ""  # backends.providers key of the provider posting here
    expects_json = True  # the body is JSON whatever its content type says

    def __init__(self, **kwargs):
        # anymail's own basic-auth check (and its "insecure" warning) uses this provider's secrets.
        kwargs.setdefault("webhook_secret", auth.configured_secrets(self.provider))
        super().__init__(**kwargs)

    def dispatch(self, request, *args, **kwargs):
        if not providers.enabled(self.provider):
            return JsonResponse({"detail": _("No such webhook: %(provider)s is not configured here.")
                                 % {"provider": self.provider},
                                 "codes": {"detail": "webhook_not_enabled"}}, status=404)
        return super().dispatch(request, *args, **kwargs)

    def post(self, request, *args, **kwargs):
        verifies = getattr(self, "signature_verifies", None)
        refused = auth.refusal(request, provider=self.provider,
                               signed=(lambda: verifies(request)) if verifies else (lambda: False))
        if refused is not None:
            return refused
        try:
            self.prepare(request)
            self.check_body(request)
            self.run_validators(request)
            events = self.parse_events(request)
            self.check_events(events)
        except NotificationError as exc:
            logger.warning("webhook %s refused (%s): %s", request.path, exc.code, exc.message)
            return error_answer(exc)
        except AnymailWebhookValidationFailure as exc:
            logger.warning("webhook %s refused: %s", request.path, exc)
            return error_answer(NotificationError(
                _("The request failed the provider's validation (its signature or its SNS headers)."),
                code="webhook_validation_failed"))
        except (AnymailError, ValueError, KeyError, TypeError, AttributeError, IndexError, OverflowError, OSError,
                RecursionError, UnicodeError) as exc:
            logger.warning("webhook %s: unreadable payload: %r", request.path, exc)
            return error_answer(UnreadablePayload(
                _("The webhook body is not a payload %(provider)s sends.") % {"provider": self.provider}))
        self.deliver(events)
        return HttpResponse()

    def prepare(self, request) -> None:
        """Read the body as the route needs (see `inbound.InboundMixin`)."""

    def check_body(self, request) -> None:
        """Refuse JSON no provider sends, whatever the content type claims."""
        if not self.expects_json:
            return
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UnreadablePayload(_("The webhook body is not UTF-8 text.")) from exc
        check_json(text, field="body")

    def check_events(self, events) -> None:
        """Refuse what a parsed event holds that could not be stored (see subclasses)."""

    def deliver(self, events) -> None:
        tracking.record_many([provider_event(event, esp_name=self.esp_name) for event in events])


def check_json(text: str, *, field: str, nul_allowed: bool = False) -> None:
    """`NestingTooDeep` or `UnstorableText` (named `field`, the message giving the path) for
    JSON text nested past `API_MAX_JSON_DEPTH` or holding a NUL, raw or escaped."""
    if nul_allowed:
        text = text.replace("\x00", "").replace("\\u0000", "")
    elif "\x00" in text:
        raise InputError(_("%(field)s contains a NUL character (U+0000), which cannot be stored; remove it.")
                         % {"field": field}, field=field, code="unstorable_text")
    try:
        check_json_text(text, max_depth=settings.API_MAX_JSON_DEPTH)
    except InputError as exc:
        raise InputError(f"{field}: {exc.message}", field=field, code=exc.code) from exc


class SNSVerifiedMixin:
    """Every SNS message (notification or subscription confirmation) is verified before
    anymail reads it; a confirmation is then confirmed with a GET of its SubscribeURL
    (`sns.confirm_subscription`), and the JSON event a notification carries is held to
    the same depth and NUL rules as any body."""

    def validate_request(self, request):
        message = self._parse_sns_message(request)
        sns.verify(message)
        inner = message.get("Message")
        if isinstance(inner, str) and inner.lstrip()[:1] in ("{", "["):
            # Inbound mail keeps its NULs until it is stored, where they are dropped (services.inbound).
            check_json(inner, field="Message", nul_allowed=self.keeps_nul)

    keeps_nul = False

    def auto_confirm_sns_subscription(self, sns_message):
        sns.confirm_subscription(sns_message)

    def signature_verifies(self, request) -> bool:
        """Whether the body is an SNS message signed for an allowed topic (the lockout spares it)."""
        try:
            sns.verify(self._parse_sns_message(request))
        except Exception:  # noqa: BLE001 - any failure to verify is "not signed", never an error here
            return False
        return True


class SESTrackingView(ProviderWebhookMixin, SNSVerifiedMixin, AmazonSESTrackingWebhookView):
    provider = providers.AMAZON_SES


class SESInboundView(inbound.InboundMixin, ProviderWebhookMixin, SNSVerifiedMixin, AmazonSESInboundWebhookView):
    provider = providers.AMAZON_SES
    keeps_nul = True


class SendGridTrackingView(ProviderWebhookMixin, SendGridTrackingWebhookView):
    """Signed event webhook verified by anymail when `SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY` is set."""

    provider = providers.SENDGRID

    def signature_verifies(self, request) -> bool:
        """Whether SendGrid's signature (with its configured key) verifies: the lockout spares it."""
        if not self.webhook_verification_key:
            return False
        try:
            SendGridBaseWebhookView.validate_request(self, request)  # the signature check alone
        except AnymailWebhookValidationFailure:
            return False
        return True

    def check_body(self, request) -> None:
        super().check_body(request)
        events = json.loads(request.body.decode("utf-8"))
        if not isinstance(events, list):
            raise UnreadablePayload(_("A SendGrid event webhook body is a JSON array of events."))
        for index, event in enumerate(events):
            if not isinstance(event, dict):
                raise UnreadablePayload(_("Event %(index)s is not a JSON object.") % {"index": index})
            stamp = event.get("timestamp")
            if stamp is not None and (isinstance(stamp, bool) or not isinstance(stamp, (int, float))
                                      or not 0 <= stamp <= MAX_TIMESTAMP):
                raise InvalidTimestamp(_("Event %(index)s: timestamp must be a Unix time between 0 and "
                                         "%(max)s.") % {"index": index, "max": MAX_TIMESTAMP})


class SendGridInboundView(inbound.InboundMixin, ProviderWebhookMixin, SendGridInboundWebhookView):
    provider = providers.SENDGRID
    expects_json = False

    def check_body(self, request) -> None:
        for name in SENDGRID_INBOUND_JSON_FIELDS:
            value = request.POST.get(name)
            if value:
                check_json(value, field=name)


class EmailWebhookView(SESTrackingView):
    """004's `POST /api/v1/email/webhook`: Amazon SES events through SNS."""
