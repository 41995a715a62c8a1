"""anymail's normalized tracking events, turned into ours (`core.tracking.ProviderEvent`).

anymail maps every SES bounce to one event type, so the bounce type and subtype are read
from the provider's own payload (SES `bounce.bounceType`, SendGrid `type`). Our message is
found by our id: in the ESP metadata (`notification_id`, set at send), else our
`X-Notification-Id` among the mail headers SES returns (mail sent to SES over SMTP, whose
SES message id is not ours), else our Message-ID `<hex-id@domain>`.
"""
from __future__ import annotations

import uuid

from anymail.signals import AnymailTrackingEvent
from anymail.signals import EventType as Anymail
from django.utils import timezone

from notifications.audit_text import AuditText
from notifications.models import BounceType, EventType
from notifications.core.tracking import ProviderEvent

PROVIDERS = {"Amazon SES": "amazon_ses", "SendGrid": "sendgrid"}
TYPES = {
    Anymail.SENT: EventType.SENT,
    Anymail.DELIVERED: EventType.DELIVERED,
    Anymail.BOUNCED: EventType.BOUNCED,
    Anymail.COMPLAINED: EventType.COMPLAINT,
    Anymail.REJECTED: EventType.FAILED,  # SendGrid `dropped`, SES `Reject`: refused to send
    Anymail.FAILED: EventType.FAILED,
    Anymail.DEFERRED: EventType.DEFERRED,
    Anymail.OPENED: EventType.OPENED,
    Anymail.CLICKED: EventType.CLICKED,
    Anymail.UNSUBSCRIBED: EventType.UNSUBSCRIBED,
}
SES_BOUNCE_TYPES = {"Permanent": BounceType.PERMANENT, "Transient": BounceType.TEMPORARY,
                    "Undetermined": BounceType.TEMPORARY}
SENDGRID_BOUNCE_TYPES = {"bounce": BounceType.PERMANENT, "blocked": BounceType.TEMPORARY}


def provider_event(event: AnymailTrackingEvent, *, esp_name: str) -> ProviderEvent:
    provider = PROVIDERS.get(esp_name, esp_name.lower().replace(" ", "_"))
    raw = event.esp_event if isinstance(event.esp_event, dict) else {}
    event_type = TYPES.get(event.event_type, EventType.OTHER)
    bounce_type, bounce_subtype = _bounce(provider, raw) if event_type == EventType.BOUNCED else ("", "")
    return ProviderEvent(
        provider=provider, event_type=event_type, occurred_at=event.timestamp or timezone.now(),
        provider_event_id=str(event.event_id or ""), provider_message_id=str(event.message_id or ""),
        recipient=str(event.recipient or ""), notification_id=notification_id(event, raw),
        bounce_type=bounce_type, bounce_subtype=bounce_subtype, detail=_detail(provider, event, raw, event_type),
        payload=raw, description=_description(provider, raw),
    )


def notification_id(event: AnymailTrackingEvent, raw: dict) -> str:
    """Our message id carried by the event, or ""."""
    metadata = event.metadata if isinstance(event.metadata, dict) else {}
    if metadata.get("notification_id"):
        return str(metadata["notification_id"])
    mail = raw.get("mail") if isinstance(raw.get("mail"), dict) else {}
    headers = mail.get("headers") if isinstance(mail.get("headers"), list) else []
    for header in headers:
        if isinstance(header, dict) and str(header.get("name", "")).lower() == "x-notification-id":
            return str(header.get("value", ""))
    common = mail.get("commonHeaders") if isinstance(mail.get("commonHeaders"), dict) else {}
    return _id_from_message_id(str(common.get("messageId") or raw.get("smtp-id") or ""))


def _id_from_message_id(value: str) -> str:
    """Our Message-ID is `<hex-id@domain>` (services.delivery.message_id_header)."""
    local = value.strip().strip("<>").partition("@")[0]
    try:
        return str(uuid.UUID(hex=local)) if len(local) == 32 else ""
    except ValueError:
        return ""


def _bounce(provider: str, raw: dict) -> tuple[str, str]:
    if provider == "amazon_ses":
        bounce = raw.get("bounce") if isinstance(raw.get("bounce"), dict) else {}
        return (SES_BOUNCE_TYPES.get(bounce.get("bounceType"), BounceType.TEMPORARY),
                str(bounce.get("bounceSubType") or ""))
    kind = str(raw.get("type") or "bounce").lower()
    return (SENDGRID_BOUNCE_TYPES.get(kind, BounceType.PERMANENT),
            str(raw.get("bounce_classification") or raw.get("status") or ""))


def _description(provider: str, raw: dict) -> AuditText | None:
    """Our own sentence about the event, stored as a code (shown in the reader's language);
    the provider's words (`detail`) are a parameter, as they came."""
    if provider == "sendgrid" and raw.get("event") == "dropped":
        reason = str(raw.get("reason") or raw.get("type") or "")
        return AuditText("dropped_by", {"provider": "SendGrid", "reply": reason or AuditText("no_reason_given")})
    return None


def _detail(provider: str, event: AnymailTrackingEvent, raw: dict, event_type: str) -> str:
    if provider == "sendgrid" and raw.get("event") == "dropped":
        return str(raw.get("reason") or raw.get("type") or "")
    parts = [str(part) for part in (event.description, event.mta_response) if part]
    if event_type == EventType.CLICKED and event.click_url:
        parts.append(str(event.click_url))
    return " — ".join(parts)
