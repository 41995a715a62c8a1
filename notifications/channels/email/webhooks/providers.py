"""Which providers' webhook routes exist here: the one the configured backend sends through,
and those listed in `WEBHOOK_PROVIDERS`. Any other provider's routes answer 404, so a
holder of one provider's secret cannot post another provider's events (issue 16).

Configured means: the backend's provider key (`backends.providers.configured_provider_keys`:
anymail's SES or SendGrid backend, or SMTP to that ESP's relay), or for SES the SNS topics
its events come from (`EMAIL_SES_SNS_TOPIC_ARNS`), for SendGrid its API key.
"""
from __future__ import annotations

from django.conf import settings

from notifications.channels.email.backends.providers import AMAZON_SES, SENDGRID, configured_provider_keys

ROUTED = (AMAZON_SES, SENDGRID)


def enabled(provider: str) -> bool:
    """Whether `provider`'s webhook routes answer."""
    if provider in settings.WEBHOOK_PROVIDERS:
        return True
    if provider == AMAZON_SES and settings.EMAIL_SES_SNS_TOPIC_ARNS:
        return True
    if provider == SENDGRID and (getattr(settings, "ANYMAIL", None) or {}).get("SENDGRID_API_KEY"):
        return True
    return provider in configured_provider_keys()


__all__ = ["AMAZON_SES", "ROUTED", "SENDGRID", "enabled"]
