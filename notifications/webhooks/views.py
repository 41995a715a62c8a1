"""The webhook views: anymail's, behind our secret policy and our SNS verification.

- `/anymail/amazon_ses/tracking/`, `/anymail/sendgrid/tracking/` (and the inbound routes):
  anymail's views with `SecuredWebhookMixin`; the SES ones also with `SNSVerifiedMixin`.
- `POST /api/v1/email/webhook` (004): the SES tracking view under the API's path.

A request is answered 401 without an accepted secret, 403 when the SNS message does not
verify or comes from another topic, 400 when the payload cannot be read; nothing is stored
then. A verified event is answered 200 even when it matches no message, so the provider
stops retrying.
"""
from __future__ import annotations

import logging

from anymail.exceptions import AnymailError, AnymailWebhookValidationFailure
from anymail.webhooks.amazon_ses import AmazonSESInboundWebhookView, AmazonSESTrackingWebhookView
from anymail.webhooks.sendgrid import (
    SendGridBaseWebhookView,
    SendGridInboundWebhookView,
    SendGridTrackingWebhookView,
)
from django.http import HttpResponse, JsonResponse
from django.utils.translation import gettext as _

from notifications.exceptions import NotificationError

from . import auth, sns

logger = logging.getLogger(__name__)


class SecuredWebhookMixin:
    """Our secret policy before anymail's validators, and JSON 4xx answers for bad requests.

    Replaces anymail's `post` (same steps: validate, parse, send the signal), so a payload
    anymail cannot parse is a 400 rather than a 500 that the provider would retry forever.
    """

    def post(self, request, *args, **kwargs):
        verifies = getattr(self, "signature_verifies", None)
        refused = auth.refusal(request, signed=(lambda: verifies(request)) if verifies else (lambda: False))
        if refused is not None:
            return refused
        try:
            self.run_validators(request)
            events = self.parse_events(request)
        except NotificationError as exc:
            logger.warning("webhook %s refused: %s", request.path, exc)
            return JsonResponse(exc.as_dict(), status=exc.status_code)
        except AnymailWebhookValidationFailure as exc:
            logger.warning("webhook %s refused: %s", request.path, exc)
            return JsonResponse({"detail": str(exc)}, status=400)
        except (AnymailError, ValueError, KeyError, TypeError, AttributeError) as exc:
            logger.warning("webhook %s: unreadable payload: %s", request.path, exc)
            return JsonResponse({"detail": _("The webhook payload could not be read: %(error)s") % {"error": exc}},
                                status=400)
        for event in events:
            self.signal.send(sender=self.__class__, event=event, esp_name=self.esp_name)
        return HttpResponse()


class SNSVerifiedMixin:
    """Every SNS message (notification or subscription confirmation) is verified before
    anymail reads it, so a subscription is confirmed with AWS only for a signed message
    from an allowed topic."""

    def validate_request(self, request):
        sns.verify(self._parse_sns_message(request))

    def signature_verifies(self, request) -> bool:
        """Whether the body is an SNS message signed for an allowed topic (the lockout spares it)."""
        try:
            sns.verify(self._parse_sns_message(request))
        except Exception:  # noqa: BLE001 - any failure to verify is "not signed", never an error here
            return False
        return True


class SESTrackingView(SecuredWebhookMixin, SNSVerifiedMixin, AmazonSESTrackingWebhookView):
    pass


class SESInboundView(SecuredWebhookMixin, SNSVerifiedMixin, AmazonSESInboundWebhookView):
    pass


class SendGridTrackingView(SecuredWebhookMixin, SendGridTrackingWebhookView):
    """Signed event webhook verified by anymail when `SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY` is set."""

    def signature_verifies(self, request) -> bool:
        """Whether SendGrid's signature (with its configured key) verifies: the lockout spares it."""
        if not self.webhook_verification_key:
            return False
        try:
            SendGridBaseWebhookView.validate_request(self, request)  # the signature check alone
        except AnymailWebhookValidationFailure:
            return False
        return True


class SendGridInboundView(SecuredWebhookMixin, SendGridInboundWebhookView):
    pass


class EmailWebhookView(SESTrackingView):
    """004's `POST /api/v1/email/webhook`: Amazon SES events through SNS."""
