"""The service's tables; see ARCHITECTURE.md's domain table."""
from .access import APIKey, IdempotencyRecord
from .events import DeliveryEvent, EventType
from .messages import AttachmentBlob, BounceType, DeliveryAttempt, EmailAttachment, EmailMessage, Status
from .smtp import SMTPSecurity, SMTPServerConfig
from .templates import Category, EmailTemplate, EmailTemplateVersion, Kind, Lane

__all__ = [
    "APIKey",
    "AttachmentBlob",
    "DeliveryAttempt",
    "DeliveryEvent",
    "EventType",
    "IdempotencyRecord",
    "BounceType",
    "Category",
    "EmailAttachment",
    "EmailMessage",
    "EmailTemplate",
    "EmailTemplateVersion",
    "Kind",
    "Lane",
    "SMTPSecurity",
    "SMTPServerConfig",
    "Status",
]
